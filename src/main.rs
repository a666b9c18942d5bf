use std::io::Write;

fn main() {
    let code = wfe_engine::cli::main();
    // `process::exit` skips destructors: flush what is buffered first.
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}
