fn main() {
    std::process::exit(wfe_engine::cli::main());
}
