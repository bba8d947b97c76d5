fn main() {
    std::process::exit(microctl::run(std::env::args_os()));
}
