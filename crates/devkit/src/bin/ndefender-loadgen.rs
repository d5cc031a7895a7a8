fn main() {
    eprintln!("ndefender-loadgen: not implemented yet");
    std::process::exit(2);
}
