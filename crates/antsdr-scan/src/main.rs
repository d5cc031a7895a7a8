fn main() {
    eprintln!("ndefender-antsdr-scan: not implemented yet");
    std::process::exit(2);
}
