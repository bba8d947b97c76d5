//! The payload: one tar stream of `stage.NONCE/` holding `apply.sh` and the content of every
//! file to write (`f/ID/NAME`), sent on the host's exec channel after the probe and unpacked by the host
//! inside its state folder. It is never built in memory: [`Payload`] is the list of tar
//! headers (small) and of the files' contents, shared with the rendered [`Desired`] (a
//! 200 MB static file sent to many hosts stays one copy), streamed in chunks.

use std::sync::Arc;

use crate::error::{Error, ErrorKind, Result};
use crate::plan::desired::Desired;
use crate::plan::{Action, Plan};
use crate::remote::Session;

use super::apply_script;

/// How much of a file one `send` carries.
const CHUNK: usize = 256 * 1024;

/// One piece of the tar stream.
enum Piece {
    Own(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Own(b) => b,
            Piece::Shared(b) => b,
        }
    }
}

/// A tar stream, as pieces.
pub struct Payload {
    pieces: Vec<Piece>,
}

impl Payload {
    /// Its length in bytes (the frame's `LEN`).
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.bytes().len()).sum()
    }

    /// Sends `LEN\n` and the stream, chunk by chunk.
    pub async fn send(&self, session: &mut Session) -> Result<()> {
        session.send(format!("{}\n", self.len()).as_bytes()).await?;
        for piece in &self.pieces {
            for chunk in piece.bytes().chunks(CHUNK) {
                session.send(chunk).await?;
            }
        }
        Ok(())
    }

    /// The whole stream in memory (tests).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.pieces.iter().flat_map(|p| p.bytes().iter().copied()).collect()
    }
}

pub fn build(desired: &Desired, plan: &Plan, nonce: &str) -> Result<Payload> {
    let top = format!("stage.{nonce}");
    let mut pieces = vec![Piece::Own(header(&format!("{top}/"), 0, tar::EntryType::Directory)?)];
    let mut add = |name: &str, data: Piece| -> Result<()> {
        let len = data.bytes().len();
        pieces.push(Piece::Own(header(&format!("{top}/{name}"), len, tar::EntryType::Regular)?));
        pieces.push(data);
        pieces.push(Piece::Own(vec![0; (512 - len % 512) % 512]));
        Ok(())
    };
    add("apply.sh", Piece::Own(apply_script::build(desired, plan).into_bytes()))?;
    for change in &plan.changes {
        if let Action::WriteFile(i) = change.action {
            add(&apply_script::payload_name(desired, i), Piece::Shared(desired.files[i].content.clone()))?;
        }
    }
    pieces.push(Piece::Own(vec![0; 1024]));
    Ok(Payload { pieces })
}

/// The tar header(s) of one entry (a GNU long-name entry first when `name` needs one: a
/// destination's name may be long), mode 0700 for the folder, 0600 for files, owned by root,
/// time 0. The content and its padding follow separately.
fn header(name: &str, size: usize, kind: tar::EntryType) -> Result<Vec<u8>> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_size(size as u64);
    h.set_mode(if kind == tar::EntryType::Directory { 0o700 } else { 0o600 });
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    let error = |e: std::io::Error| Error::new(ErrorKind::Io, format!("cannot add {name} to the payload")).caused_by(e);
    // The builder writes the header(s) and, from the empty reader, no content; `into_inner`
    // adds the archive's end (two zero blocks), which is cut off again.
    let mut b = tar::Builder::new(Vec::new());
    b.append_data(&mut h, name, std::io::empty()).map_err(error)?;
    let mut bytes = b.into_inner().map_err(error)?;
    bytes.truncate(bytes.len() - 1024);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The streamed pieces are a tar that the `tar` crate (and the host's GNU tar, in the
    /// host's tests) read back: the folder, apply.sh, each changed file under its staged name.
    #[test]
    fn pieces_form_a_tar() {
        let mut d = Desired { host: "h".into(), ..Default::default() };
        let content = Arc::new(vec![7u8; 1000]);
        d.files.push(crate::plan::desired::FileSpec {
            origin: Default::default(),
            dest: "/srv/a".into(),
            sha256: crate::plan::desired::sha256_hex(&content),
            content,
            meta: Default::default(),
            validate: None,
            sensitive: false,
            notify: vec![],
            apt_source: false,
        });
        let plan = crate::plan::plan(&d, &Default::default());
        let p = build(&d, &plan, "00ff").unwrap();
        let bytes = p.to_vec();
        assert_eq!(bytes.len(), p.len());
        assert_eq!(bytes.len() % 512, 0);
        let mut ar = tar::Archive::new(&bytes[..]);
        let names: Vec<(String, u64)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path().unwrap().display().to_string(), e.size())
            })
            .collect();
        assert_eq!(names[0], ("stage.00ff/".into(), 0));
        assert_eq!(names[1].0, "stage.00ff/apply.sh");
        assert_eq!(names[2], ("stage.00ff/f/0/a".into(), 1000));
        // A long destination name gets a GNU long-name entry.
        d.files[0].dest = format!("/srv/{}", "n".repeat(200));
        let bytes = build(&d, &plan, "00ff").unwrap().to_vec();
        let mut ar = tar::Archive::new(&bytes[..]);
        let long = ar.entries().unwrap().nth(2).unwrap().unwrap().path().unwrap().display().to_string();
        assert_eq!(long, format!("stage.00ff/f/0/{}", "n".repeat(200)));
    }
}
