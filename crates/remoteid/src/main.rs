use std::path::PathBuf;

const NAME: &str = "ndefender-remoteid";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("decode") {
        let Some(file) = args.get(1) else {
            eprintln!("usage: {NAME} decode FILE");
            std::process::exit(2);
        };
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        match ndefender_remoteid::cli::decode_file(&PathBuf::from(file), &mut out, &mut std::io::stderr()) {
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("{NAME}: {e}");
                std::process::exit(1);
            }
        }
    }
}
