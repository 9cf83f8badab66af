//! A private test CA made with the `openssl` command line (installed by scripts/test.sh): the
//! certificates of the mutual-TLS tests (`mtls`) and of the TLS brokers (`broker_procs`).
//! Everything lives in a temporary directory that goes with the [`TestPki`].

use std::path::{Path, PathBuf};
use std::process::Command;

/// PEM files issued by a [`TestPki`]: its CA, the certificate and the certificate's key.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A test CA (P-256, valid two days) in a temporary directory.
pub struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("pki dir");
        new_key(
            dir.path(),
            "ca.key",
            &[
                "-x509",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=Herald Test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Self { dir }
    }

    /// The CA certificate's file (what Herald's `ca_bundle` names).
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A server certificate for `cn` with the subject alternative names `san` (openssl
    /// syntax, e.g. `DNS:localhost,IP:127.0.0.1`).
    pub fn server(&self, name: &str, cn: &str, san: &str) -> TlsFiles {
        self.issue(
            name,
            cn,
            &format!(
                "subjectAltName={san}\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
            ),
        )
    }

    /// A client certificate for `cn`.
    pub fn client(&self, name: &str, cn: &str) -> TlsFiles {
        self.issue(
            name,
            cn,
            "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n",
        )
    }

    /// A certificate from this CA for `cn` with the extensions file `ext`.
    fn issue(&self, name: &str, cn: &str, ext: &str) -> TlsFiles {
        let d = self.dir.path();
        let (key, csr, pem, extf) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        std::fs::write(d.join(&extf), ext).expect("extensions file");
        let subj = format!("/CN={cn}");
        new_key(d, &key, &["-out", &csr, "-subj", &subj]);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &extf,
            ],
        );
        TlsFiles {
            ca: self.ca(),
            cert: d.join(pem),
            key: d.join(key),
        }
    }
}

impl TlsFiles {
    /// The PEM texts: CA, certificate, key.
    pub fn read(&self) -> (String, String, String) {
        let read = |p: &Path| std::fs::read_to_string(p).expect("read PEM");
        (read(&self.ca), read(&self.cert), read(&self.key))
    }
}

/// `openssl req` with a new P-256 key written to `key`, plus `args` (a CSR, or with `-x509` a
/// self-signed certificate).
fn new_key(dir: &Path, key: &str, args: &[&str]) {
    let mut all = vec![
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        key,
    ];
    all.extend_from_slice(args);
    openssl(dir, &all);
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
