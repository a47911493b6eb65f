//! Key files: a 32-byte Ed25519 seed, hex-encoded, readable by its owner only.
//!
//! Keys are generated here from the operating system's CSPRNG. They are stored unencrypted for
//! now; encryption at rest behind a signer interface (so an HSM can be plugged in) is planned.

use anyhow::{Context, Result, bail};
use cbdc_ledger::SigningKey;
use ring::rand::{SecureRandom, SystemRandom};
use std::io::Write;
use std::path::Path;

/// Fresh random bytes from the OS.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| anyhow::anyhow!("the OS random source failed"))?;
    Ok(out)
}

/// Writes a new random seed to `path` (mode 0600); refuses to overwrite an existing key.
pub fn generate(path: &Path) -> Result<[u8; 32]> {
    let seed = random_bytes::<32>()?;
    write(path, &seed)?;
    Ok(seed)
}

pub fn write(path: &Path, seed: &[u8; 32]) -> Result<()> {
    write_secret(path, format!("{}\n", hex::encode(seed)).as_bytes())
}

/// Writes `contents` to a new file with mode 0600; refuses to overwrite an existing file.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file =
        options.open(path).with_context(|| format!("creating secret file {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

/// Reads a seed written by [`write`].
pub fn read(path: &Path) -> Result<[u8; 32]> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading key {}", path.display()))?;
    let mut seed = [0u8; 32];
    if hex::decode_to_slice(text.trim(), &mut seed).is_err() {
        bail!("{} does not hold a 32-byte hex key", path.display());
    }
    Ok(seed)
}

/// Reads a key file as a signing key.
pub fn signing_key(path: &Path) -> Result<SigningKey> {
    let seed = read(path)?;
    SigningKey::from_seed(&seed)
        .map_err(|_| anyhow::anyhow!("{} is not an Ed25519 seed", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir()
            .join(format!("cbdc-keys-{}", hex::encode(random_bytes::<8>().unwrap())));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.key");
        let seed = generate(&path).unwrap();
        assert_eq!(read(&path).unwrap(), seed);
        assert!(generate(&path).is_err(), "an existing key is never overwritten");
        std::fs::write(dir.join("bad.key"), "nothex").unwrap();
        assert!(read(&dir.join("bad.key")).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key files are private");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
