use liveops_domain::PlayerId;
use liveops_hotstate::BoardIndex;
use rand::{rngs::StdRng, Rng, SeedableRng};
use std::time::Instant;
fn main() {
    let n = 1_000_000;
    let ids: Vec<PlayerId> = (0..n)
        .map(|i| PlayerId::parse(format!("player_{i:07}")).unwrap())
        .collect();
    for cap in [128usize, 256, 512, 1024, 2048] {
        let mut rng = StdRng::seed_from_u64(7);
        let mut b = BoardIndex::with_node_capacity(cap);
        let t = Instant::now();
        for id in &ids {
            b.add(id, rng.gen_range(0..2_000_000));
        }
        let fill = t.elapsed();
        let picks: Vec<usize> = (0..200_000).map(|_| rng.gen_range(0..n)).collect();
        let t = Instant::now();
        for &i in &picks {
            std::hint::black_box(b.add(&ids[i], 37));
        }
        let add = t.elapsed() / picks.len() as u32;
        let t = Instant::now();
        for &i in &picks {
            std::hint::black_box(b.rank(&ids[i]));
        }
        let rank = t.elapsed() / picks.len() as u32;
        println!("cap {cap}: fill {fill:?} add {add:?} rank {rank:?}");
    }
}
