//! Files of concatenated BSON documents, as mongodump writes them (`<collection>.bson`):
//! reading them one document at a time, blocking or async.

use std::io::Read;
use std::path::Path;

use tokio::io::AsyncReadExt;

use super::error::{BackupError, Result, io};

/// The largest document a file may hold (the store's limit is 16 MiB; some slack for
/// documents the server itself writes).
const MAX_DOC: usize = 48 * 1024 * 1024;

fn length(prefix: [u8; 4], path: &Path) -> Result<usize> {
    let len = usize::try_from(u32::from_le_bytes(prefix)).unwrap_or(usize::MAX);
    if !(5..=MAX_DOC).contains(&len) {
        return Err(BackupError::Corrupt(format!(
            "{} holds a document of impossible length {len}",
            path.display()
        )));
    }
    Ok(len)
}

/// The next document's bytes, or `None` at the end of the file.
pub fn next(r: &mut impl Read, path: &Path) -> Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut prefix[got..]).map_err(io(path))?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(truncated(path));
        }
        got += n;
    }
    let len = length(prefix, path)?;
    let mut doc = vec![0u8; len];
    doc[..4].copy_from_slice(&prefix);
    r.read_exact(&mut doc[4..]).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => truncated(path),
        _ => io(path)(e),
    })?;
    Ok(Some(doc))
}

/// [`next`] for an async reader.
pub async fn next_async(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    path: &Path,
) -> Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = r.read(&mut prefix[got..]).await.map_err(io(path))?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(truncated(path));
        }
        got += n;
    }
    let len = length(prefix, path)?;
    let mut doc = vec![0u8; len];
    doc[..4].copy_from_slice(&prefix);
    r.read_exact(&mut doc[4..])
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => truncated(path),
            _ => io(path)(e),
        })?;
    Ok(Some(doc))
}

fn truncated(path: &Path) -> BackupError {
    BackupError::Corrupt(format!(
        "{} ends in the middle of a document",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bson::doc;

    #[test]
    fn reads_documents_back_and_notices_a_cut() {
        let mut bytes = doc! {"_id": 1, "a": "x"}.to_vec().unwrap();
        bytes.extend(doc! {"_id": 2}.to_vec().unwrap());
        let path = Path::new("t.bson");
        let mut r = bytes.as_slice();
        let first = next(&mut r, path).unwrap().unwrap();
        assert_eq!(
            bson::Document::from_reader(first.as_slice())
                .unwrap()
                .get_i32("_id")
                .unwrap(),
            1
        );
        assert!(next(&mut r, path).unwrap().is_some());
        assert!(next(&mut r, path).unwrap().is_none());
        let cut = &bytes[..bytes.len() - 3];
        let mut r = cut;
        next(&mut r, path).unwrap();
        assert!(next(&mut r, path).is_err());
    }
}
