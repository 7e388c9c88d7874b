//! Fuzz target for the MSML reader and writer (`crate::msml`).
//!
//! Any bytes go to `msml::read::parse`; nothing may panic. Reading is
//! deterministic (the same input gives the same document or error). A
//! refusal carries a 4xx code of RFC 5707 section 11 and a description. An
//! accepted document is written back as the `<result>` of each request and
//! the `<event>` of each `<send>` in its hooks, and each written document
//! must itself be well-formed MSML: read as a request it is refused as the
//! unsupported element it is (402), never as malformed XML (400).

use crate::msml::{self, read::parse, Request};

/// A document we wrote reads as a known, unsupported element.
fn check_written(doc: &str) {
    let e = parse(doc.as_bytes()).expect_err("a result or event is not a request");
    assert_eq!(e.response, 402, "{doc}: {e}");
}

/// The `msml` fuzz target.
pub fn msml(data: &[u8]) {
    let first = parse(data);
    assert_eq!(first, parse(data), "parse is not deterministic");
    let doc = match first {
        Ok(doc) => doc,
        Err(e) => {
            assert!((400..500).contains(&e.response), "{e}");
            assert!(!e.description.is_empty());
            check_written(&msml::result(e.response, Some(&e.description), None));
            return;
        }
    };
    for request in &doc.requests {
        let Request::DialogStart(d) = request else {
            continue;
        };
        let id = msml::dialog_id(&d.target, d.name.as_deref().unwrap_or("1"));
        check_written(&msml::result(200, None, Some(&id)));
        let t = &d.transfer;
        for send in t.objdone.sends.iter().chain(&t.exit.sends) {
            let pairs: Vec<(&str, String)> = send
                .namelist
                .iter()
                .map(|n| (n.as_str(), msml::token(n)))
                .collect();
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            check_written(&msml::event(&send.event, &id, &pairs));
        }
        for object in &t.objects {
            if let msml::TransferObject::File(f) = object {
                if let msml::Dest::Xmsrp(x) = &f.dest {
                    assert!(!x.selector_name().contains('/'));
                }
            }
        }
    }
}
