fn main() {
    eprintln!("ndefender-watch: not implemented yet");
    std::process::exit(2);
}
