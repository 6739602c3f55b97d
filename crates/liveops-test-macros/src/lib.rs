//! `#[api_test]`: the attribute every test of the server's API suite (`crates/liveops-server/
//! tests/api`) carries, so that each test runs on both deployments by construction rather than
//! by a hand-kept list.
//!
//! ```ignore
//! #[api_test]
//! async fn accepted_event_is_202_with_its_event_id() { ... }
//! ```
//! keeps the `async fn` as written and adds, beside it, a module of the same name (modules and
//! functions live in different namespaces) with two tests:
//! - `<name>::embedded`: SQLite, in-memory hot state and the in-process bus;
//! - `<name>::on_engines`: PostgreSQL + Redis + NATS JetStream, through the suite's
//!   `crate::engines::engines` (own database, Redis namespace and JetStream stream per app).
//!
//! A test that cannot mean the same thing on both opts out and says why:
//! `#[api_test(not_on_engines = "reads the snapshot files, which only the file archive writes")]`
//! gives one plain test `<name>` on the backends the test configures itself. The reason is
//! required: an opt-out without one does not compile.
//!
//! The generated tests call the suite's `crate::engines::block_on` (the test's own
//! current-thread runtime, as `#[tokio::test]` builds) and `crate::engines::engines`.
//!
//! Written on `proc_macro` alone (no `syn`): the input is only checked for the
//! `async fn <name>()` shape, and its tokens are passed through unchanged.

use proc_macro::{Delimiter, Group, TokenStream, TokenTree};

/// See the crate documentation.
#[proc_macro_attribute]
pub fn api_test(attr: TokenStream, item: TokenStream) -> TokenStream {
    let opted_out = match opts_out(attr) {
        Ok(o) => o,
        Err(e) => return compile_error(&e),
    };
    let name = match test_name(&item) {
        Ok(n) => n,
        Err(e) => return compile_error(&e),
    };
    if opted_out {
        opt_out_test(item, &name)
    } else {
        matrix(item, &name)
    }
}

/// The function as written, and `mod <name> { embedded, on_engines }` beside it.
fn matrix(item: TokenStream, name: &str) -> TokenStream {
    let variants = format!(
        "mod {name} {{
            #[test]
            fn embedded() {{
                crate::engines::block_on(super::{name})
            }}
            #[test]
            fn on_engines() {{
                crate::engines::engines(|| crate::engines::block_on(super::{name}))
            }}
        }}"
    );
    let mut out = item;
    out.extend(parse(&variants));
    out
}

/// `false` for `#[api_test]`, `true` for `#[api_test(not_on_engines = "<a reason>")]`.
fn opts_out(attr: TokenStream) -> Result<bool, String> {
    let tokens: Vec<TokenTree> = attr.into_iter().collect();
    if tokens.is_empty() {
        return Ok(false);
    }
    const USAGE: &str =
        "expected #[api_test] or #[api_test(not_on_engines = \"why this test cannot run on the engines\")]";
    match tokens.as_slice() {
        [TokenTree::Ident(key), TokenTree::Punct(eq), TokenTree::Literal(lit)]
            if key.to_string() == "not_on_engines" && eq.as_char() == '=' =>
        {
            let lit = lit.to_string();
            let reason = lit.trim_matches('"').trim();
            if !lit.starts_with('"') || reason.is_empty() {
                return Err(USAGE.into());
            }
            Ok(true)
        }
        _ => Err(USAGE.into()),
    }
}

/// The name of the `async fn <name>()` the attribute is on.
fn test_name(item: &TokenStream) -> Result<String, String> {
    const SHAPE: &str = "#[api_test] goes on an `async fn <name>()` without arguments";
    let tokens: Vec<TokenTree> = item.clone().into_iter().collect();
    let fn_at = tokens
        .iter()
        .position(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "fn"))
        .ok_or(SHAPE)?;
    let is_async = tokens[..fn_at]
        .iter()
        .any(|t| matches!(t, TokenTree::Ident(i) if i.to_string() == "async"));
    let (Some(TokenTree::Ident(name)), Some(TokenTree::Group(args))) =
        (tokens.get(fn_at + 1), tokens.get(fn_at + 2))
    else {
        return Err(SHAPE.into());
    };
    if !is_async || args.delimiter() != Delimiter::Parenthesis || !args.stream().is_empty() {
        return Err(SHAPE.into());
    }
    Ok(name.to_string())
}

/// An opted-out test: `#[test] fn <name>()` holding the function, as written, and running it
/// once (the function's tokens keep their spans, so errors point into the test's source).
fn opt_out_test(item: TokenStream, name: &str) -> TokenStream {
    let mut body = item;
    body.extend(parse(&format!("crate::engines::block_on({name})")));
    let mut out = parse(&format!("#[test] fn {name}()"));
    out.extend([TokenTree::Group(Group::new(Delimiter::Brace, body))]);
    out
}

/// Code this crate writes itself, which always parses.
fn parse(code: &str) -> TokenStream {
    code.parse().expect("generated code is valid Rust")
}

fn compile_error(message: &str) -> TokenStream {
    parse(&format!("compile_error!({message:?});"))
}
