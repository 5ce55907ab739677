//! Certificates for the mTLS tests, made with the `openssl` command line in a fresh directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory under the system's temp dir, named for `what` and this process.
pub fn tempdir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("webhooks-{what}-{}-{}", std::process::id(), time::OffsetDateTime::now_utc().unix_timestamp_nanos()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Certificates for the mTLS test, made with `openssl` in `dir`: a CA, a server certificate for
/// 127.0.0.1 and a client certificate, both issued by it; and an unrelated CA.
pub fn certificates(dir: &Path) -> HashMap<&'static str, String> {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl on PATH");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    for ca in ["ca", "other-ca"] {
        run(&[&["req", "-x509"], &ec[..], &["-keyout", &format!("{ca}.key"), "-out", &format!("{ca}.pem"), "-days", "2", "-subj", &format!("/CN=test {ca}")]].concat());
    }
    std::fs::write(dir.join("server.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for who in ["server", "client"] {
        run(&[&["req"], &ec[..], &["-keyout", &format!("{who}.key"), "-out", &format!("{who}.csr"), "-subj", &format!("/CN=webhooks {who}")]].concat());
        run(&["x509", "-req", "-in", &format!("{who}.csr"), "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", &format!("{who}.ext"), "-out", &format!("{who}.pem")]);
    }
    ["ca.pem", "other-ca.pem", "client.pem", "client.key"].into_iter().map(|f| (f, std::fs::read_to_string(dir.join(f)).unwrap())).collect()
}

