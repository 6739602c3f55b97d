//! The web role: the pages and their assets come from the binary, with the headers that make
//! them safe and cheap to reload.

use crate::helpers::*;

#[api_test]
async fn the_dashboard_and_the_game_are_served_with_a_strict_policy() {
    let app = spawn_app().await;
    for (path, marker) in [("/", "operator dashboard"), ("/play", "demo game")] {
        let r = app.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.header("content-type")
                .unwrap_or("")
                .starts_with("text/html"),
            "{path}"
        );
        assert!(r.text.contains(marker), "{path} is not the expected page");
        let csp = r.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(r.header("etag").is_some(), "{path} has no ETag");
    }
}

#[api_test]
async fn every_asset_a_page_references_is_served_with_its_type() {
    let app = spawn_app().await;
    for page in ["/", "/play"] {
        let html = app.get(page).await.text;
        let refs: Vec<&str> = html
            .split(['"', '\''])
            .filter(|s| s.starts_with("/assets/"))
            .collect();
        assert!(refs.len() >= 2, "{page} references no assets");
        for asset in refs {
            let r = app.get(asset).await;
            assert_eq!(r.status, 200, "{asset} from {page}");
            let ct = r.header("content-type").unwrap_or("");
            let want = if asset.ends_with(".js") {
                "text/javascript"
            } else if asset.ends_with(".css") {
                "text/css"
            } else {
                ""
            };
            assert!(ct.starts_with(want), "{asset}: {ct}");
        }
    }
    // The modules' own imports.
    for module in ["api.js", "board.js", "sign.js", "dashboard.js", "play.js"] {
        assert_eq!(app.get(&format!("/assets/js/{module}")).await.status, 200);
    }
}

#[api_test]
async fn a_known_etag_gets_304_and_unknown_assets_404() {
    let app = spawn_app().await;
    let r = app.get("/assets/css/app.css").await;
    let etag = r.header("etag").expect("ETag").to_string();
    let again = app
        .client
        .get_with("/assets/css/app.css", &[("If-None-Match", &etag)])
        .await
        .unwrap();
    assert_eq!(again.status, 304);
    for path in [
        "/assets/nope.js",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/Cargo.toml",
        "/assets/index.html",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.error_code(), Some("not_found"), "{path}");
    }
}

#[api_test]
async fn the_vendored_chart_library_ships_with_its_licence() {
    let app = spawn_app().await;
    let licence = app.get("/assets/vendor/uplot/LICENSE").await;
    assert_eq!(licence.status, 200);
    assert!(licence.text.contains("MIT License"));
}

#[api_test]
async fn the_api_reference_renders_the_openapi_document_with_the_vendored_bundle() {
    let app = spawn_app().await;
    let r = app.get("/docs").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    assert!(
        r.text.contains(r#"spec-url="/openapi.json""#),
        "/docs does not point at the document:\n{}",
        r.text
    );
    let csp = r.header("content-security-policy").unwrap_or("");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let bundle = "/assets/vendor/redoc/redoc.standalone.js";
    assert!(r.text.contains(bundle), "/docs does not load {bundle}");
    assert!(
        !r.text.contains("http://") && !r.text.contains("https://"),
        "/docs loads nothing from elsewhere"
    );
    let js = app.get(bundle).await;
    assert_eq!(js.status, 200);
    assert!(js
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/javascript"));
    assert!(js.text.len() > 100_000 && js.text.contains("Redoc"));
    let licence = app.get("/assets/vendor/redoc/LICENSE").await;
    assert_eq!(licence.status, 200);
    assert!(licence.text.contains("MIT License"));
    assert_eq!(app.get("/openapi.json").await.status, 200);
}

#[api_test]
async fn the_vendored_hmac_library_is_served_as_javascript_with_its_licence() {
    let app = spawn_app().await;
    let licence = app.get("/assets/vendor/noble-hashes/LICENSE").await;
    assert_eq!(licence.status, 200);
    assert!(licence.text.contains("MIT License"));
    // `sign.js` imports hmac.js and sha2.js, which import the rest relatively.
    for module in ["hmac.js", "sha2.js", "_md.js", "_u64.js", "utils.js"] {
        let r = app
            .get(&format!("/assets/vendor/noble-hashes/{module}"))
            .await;
        assert_eq!(r.status, 200, "{module}");
        let ct = r.header("content-type").unwrap_or("");
        assert!(ct.starts_with("text/javascript"), "{module}: {ct}");
    }
}
