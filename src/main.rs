use std::io::Write;

// A decision allocates many small strings; mimalloc handles that pattern far
// better than glibc malloc (measured in benches/decide.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = wfe_engine::cli::main();
    // `process::exit` skips destructors: flush what is buffered first.
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
