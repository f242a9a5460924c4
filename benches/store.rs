//! Criterion benchmarks of the store: one batch commit of 1, 100 and 1,000 room messages (the
//! writes of one loop turn), with `durability = normal` and `full`, on a file in a temporary
//! directory (WAL mode, FTS5 index included, as chatd runs it).

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use chat::store::{Batch, Durability, NewEntry, Store, Write};
use chat::wire::message::EntryKind;

fn batch_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_commit");
    for (name, durability) in [("normal", Durability::Normal), ("full", Durability::Full)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("chat.db");
        let mut store = Store::open(&path, durability).expect("store opens");
        // chatd checkpoints off its loop; do the same so that commits are measured alone.
        let _checkpointer = store
            .start_checkpointer(&path, std::time::Duration::from_millis(500))
            .expect("checkpointer");
        let mut next_id = 1u64;
        let text = "x".repeat(100);
        for size in [1u64, 100, 1000] {
            group.throughput(Throughput::Elements(size));
            group.bench_with_input(BenchmarkId::new(name, size), &size, |b, &size| {
                b.iter_batched(
                    || {
                        let mut batch = Batch::default();
                        for _ in 0..size {
                            batch.push(Write::Entry(NewEntry {
                                id: next_id,
                                ts: 1_795_853_045_123,
                                room: Some("general".into()),
                                sender: "alice".into(),
                                to: None,
                                kind: EntryKind::Text,
                                reply_to: 0,
                                text: text.clone(),
                                mentions: Vec::new(),
                            }));
                            next_id += 1;
                        }
                        batch
                    },
                    |mut batch| store.commit(&mut batch).expect("commit"),
                    BatchSize::SmallInput,
                );
            });
        }
    }
    group.finish();
}

criterion_group!(benches, batch_commit);
criterion_main!(benches);
