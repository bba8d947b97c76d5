//! The payload: one tar stream with `apply.sh` and the content of every file to write, sent on
//! the host's exec channel after the probe. Built in memory; only changed files are included.

use crate::error::{Error, ErrorKind, Result};
use crate::plan::desired::Desired;
use crate::plan::{Action, Plan};

use super::script;

pub fn build(desired: &Desired, plan: &Plan) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    append(&mut tar, "apply.sh", script::build(desired, plan).as_bytes())?;
    for change in &plan.changes {
        if let Action::WriteFile(i) = change.action {
            append(&mut tar, &script::payload_name(i), &desired.files[i].content)?;
        }
    }
    tar.into_inner().map_err(|e| Error::new(ErrorKind::Io, "cannot build the payload").caused_by(e))
}

fn append(tar: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, name, data)
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot add {name} to the payload")).caused_by(e))
}
