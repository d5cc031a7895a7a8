fn main() {
    eprintln!("ndefender-aggregator: not implemented yet");
    std::process::exit(2);
}
