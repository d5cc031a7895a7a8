fn main() {
    eprintln!("ndefender-system-controller: not implemented yet");
    std::process::exit(2);
}
