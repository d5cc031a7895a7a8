//! A fake gpsd: a TCP server speaking gpsd's JSON (VERSION, DEVICES, WATCH,
//! then whatever TPV/SKY lines the test sends), killable and restartable on its port.

use crate::R;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// A fake gpsd: every client gets the banner, then every line sent on `tx`.
pub struct FakeGpsd {
    pub port: u16,
    pub tx: broadcast::Sender<String>,
    task: tokio::task::JoinHandle<()>,
    devices: &'static str,
}

pub const DEVICES: &str = r#"{"class":"DEVICES","devices":[{"class":"DEVICE","path":"/dev/ttyACM0","driver":"u-blox","activated":"2026-01-01T00:00:00.000Z"}]}"#;

impl FakeGpsd {
    pub async fn start(port: u16, devices: &'static str) -> R<FakeGpsd> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        let (tx, _) = broadcast::channel(1024);
        let t = tx.clone();
        let task = tokio::spawn(async move {
            let mut conns = Vec::new();
            while let Ok((mut sock, _)) = listener.accept().await {
                let mut rx = t.subscribe();
                conns.push(tokio::spawn(async move {
                    let mut buf = [0u8; 256];
                    // the client's ?WATCH first
                    let _ = tokio::time::timeout(Duration::from_secs(2), sock.read(&mut buf)).await;
                    let banner = format!(
                        "{}\r\n{}\r\n{}\r\n",
                        r#"{"class":"VERSION","release":"3.25","rev":"3.25","proto_major":3,"proto_minor":15}"#,
                        devices,
                        r#"{"class":"WATCH","enable":true,"json":true}"#
                    );
                    if sock.write_all(banner.as_bytes()).await.is_err() {
                        return;
                    }
                    while let Ok(line) = rx.recv().await {
                        if sock.write_all(format!("{line}\r\n").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }));
            }
        });
        Ok(FakeGpsd {
            port,
            tx,
            task,
            devices,
        })
    }

    pub fn send(&self, line: &str) {
        let _ = self.tx.send(line.to_owned());
    }

    /// Closes the listener and every connection.
    pub fn kill(self) -> u16 {
        self.task.abort();
        let _ = self.devices;
        self.port
    }
}

pub const SKY: &str = r#"{"class":"SKY","device":"/dev/ttyACM0","hdop":0.9,"vdop":1.4,"pdop":1.7,"satellites":[{"PRN":1,"used":true},{"PRN":2,"used":true},{"PRN":3,"used":false}]}"#;

pub fn tpv(mode: u8, lat: f64) -> String {
    format!(
        r#"{{"class":"TPV","device":"/dev/ttyACM0","mode":{mode},"lat":{lat},"lon":8.5417,"alt":410.0,"altMSL":408.2,"altHAE":455.0,"speed":0.4,"track":12.5,"hdop":9.9}}"#
    )
}
