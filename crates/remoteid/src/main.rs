use std::path::PathBuf;

const NAME: &str = "ndefender-remoteid";

fn usage_exit(msg: &str) -> ! {
    eprintln!("{NAME}: {msg}");
    eprintln!(
        "usage: {NAME} [--config FILE] [--check-config]\n       \
         {NAME} decode FILE\n       \
         {NAME} replay FILE --jsonl OUT [--speed X]\n       \
         {NAME} bench [--frames N] [--drones N]"
    );
    std::process::exit(2);
}

fn flag_value<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("decode") => {
            let Some(file) = args.get(1) else {
                usage_exit("decode needs FILE")
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let r = ndefender_remoteid::cli::decode_file(&PathBuf::from(file), &mut out, &mut std::io::stderr());
            // exit() skips destructors: flush the buffered lines first.
            let flushed = std::io::Write::flush(&mut out);
            match r.and(flushed.map_err(|e| e.to_string())) {
                Ok(_) => std::process::exit(0),
                Err(e) => {
                    eprintln!("{NAME}: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some("replay") => {
            let Some(file) = args.get(1).filter(|a| !a.starts_with("--")) else {
                usage_exit("replay needs FILE")
            };
            let out = flag_value(&args, "--jsonl").unwrap_or_else(|| usage_exit("replay needs --jsonl OUT"));
            let speed = match flag_value(&args, "--speed") {
                None => 1.0,
                Some(s) => match s.parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= 0.0 => v,
                    _ => usage_exit("--speed needs a number ≥ 0 (0 = as fast as possible)"),
                },
            };
            let max = ndefender_remoteid::config::EngineConfig::default().output.max_bytes;
            match ndefender_remoteid::cli::replay_file(&PathBuf::from(file), &PathBuf::from(out), speed, max, &now_ms) {
                Ok(s) => {
                    eprintln!("{}", serde_json::to_string(&s).unwrap_or_default());
                    std::process::exit(0);
                }
                Err(e) => {
                    eprintln!("{NAME}: {e}");
                    std::process::exit(1);
                }
            }
        }
        Some("bench") => {
            let num = |k: &str, d: u64| match flag_value(&args, k) {
                None => d,
                Some(v) => v
                    .parse::<u64>()
                    .unwrap_or_else(|_| usage_exit(&format!("{k} needs an integer"))),
            };
            let frames = num("--frames", 1_000_000);
            let drones = u32::try_from(num("--drones", 200)).unwrap_or(200);
            match ndefender_remoteid::bench::run(frames, drones) {
                Ok(r) => {
                    print!("{}", r.render());
                    std::process::exit(0);
                }
                Err(e) => {
                    eprintln!("{NAME}: bench failed: {e}");
                    std::process::exit(1);
                }
            }
        }
        _ => ndefender_remoteid::daemon::main(NAME),
    }
}
