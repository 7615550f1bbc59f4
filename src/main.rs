#![deny(unsafe_code)]

fn main() {
    thinshadow::log::init_from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(thinshadow::cli::run(&args));
}
