//! Any SQS message body through the notification decoder: a notification
//! or a reason, and every object key it names decoded consistently.

use s3logd::notification::{Notification, decode};

pub fn run(data: &[u8]) {
    let body = String::from_utf8_lossy(data);
    let Ok(Notification::Objects { objects, .. }) = decode(&body) else {
        return;
    };
    for object in &objects {
        // Form decoding only ever shortens a key, and leaves one without
        // `+` or `%` as it is.
        assert!(object.key.len() <= object.raw_key.len(), "{object:?}");
        if !object.raw_key.contains(['+', '%']) {
            assert_eq!(object.key, object.raw_key);
        }
    }
}
