fn main() {
    eprintln!("ndefender-demo: not implemented yet");
    std::process::exit(2);
}
