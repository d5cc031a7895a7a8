fn main() {
    eprintln!("ndefender-esp32-sim: not implemented yet");
    std::process::exit(2);
}
