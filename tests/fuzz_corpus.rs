//! Replays the fuzz corpus (`tests/fuzz/corpus/edge`: the seeds, and every
//! input a fuzz run found worth keeping) through the fuzz harness on the
//! stable toolchain, so the promises the fuzzer checks are checked on every
//! test run too. Fuzzing itself: `tests/fuzz/Cargo.toml`.

#[path = "fuzz/harness.rs"]
mod harness;

#[test]
fn every_corpus_input_is_answered_as_promised() {
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/edge");
    let mut inputs: Vec<_> = std::fs::read_dir(&directory)
        .unwrap_or_else(|e| panic!("{}: {e}", directory.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 20,
        "the seed corpus is missing ({} inputs)",
        inputs.len()
    );
    for input in &inputs {
        let data = std::fs::read(input).expect("a corpus file");
        let replayed = std::panic::catch_unwind(|| harness::run(&data));
        if let Err(panic) = replayed {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{}: {message}", input.display());
        }
    }
}
