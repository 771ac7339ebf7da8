//! Fields added to every record of an object: where it came from (bucket,
//! key, log type) and what AWS log-delivery keys say about the source
//! (account, region, load balancer, CloudFront distribution), plus the named
//! groups of the configured `enrich.key_regex`.

use std::sync::LazyLock;

use regex::Regex;

use crate::notification::ObjectRef;

/// The `AWSLogs/` tree every AWS service but CloudFront writes, plain or
/// Hive-style (`aws-account-id=…/aws-service=…/aws-region=…`), optionally
/// under an organization id (CloudTrail organization trails).
static AWS_LOGS_TREE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(?:aws-account-id=)?(?P<account>\d{12})/(?:aws-service=)?(?P<service>[A-Za-z0-9_-]+)/(?:aws-region=)?(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)/",
    )
    .expect("a valid regex")
});

/// An ELB file name: `[conn_log_]account_elasticloadbalancing_region_lbid_…`.
static ELB_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:conn_log_)?\d{12}_elasticloadbalancing_[a-z0-9-]+_(?P<load_balancer>[A-Za-z0-9.-]+)_\d{8}T\d{4}Z_")
        .expect("a valid regex")
});

/// A CloudFront standard log file name: `DISTRIBUTIONID.YYYY-MM-DD-HH.unique[.gz]`.
static CLOUDFRONT_FILE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<distribution_id>[A-Z0-9]{8,20})\.\d{4}-\d{2}-\d{2}-\d{2}\.[A-Za-z0-9]+(?:\.gz)?$",
    )
    .expect("a valid regex")
});

pub struct Enricher {
    key_regex: Option<Regex>,
}

impl Enricher {
    pub fn new(key_regex: Option<Regex>) -> Enricher {
        Enricher { key_regex }
    }

    /// The fields for every record of `object`, read by parser `log_type`.
    /// Named groups of `enrich.key_regex` win over the standard fields of
    /// the same name: they are what the user asked for.
    pub fn object_fields(&self, object: &ObjectRef, log_type: &str) -> Vec<(String, String)> {
        let mut fields = vec![
            ("bucket".to_owned(), object.bucket.clone()),
            ("key".to_owned(), object.key.clone()),
            ("log_type".to_owned(), log_type.to_owned()),
        ];
        let from_key = KeyFields::of(&object.key);
        let region = from_key.region.or(object.region.as_deref());
        for (name, value) in [
            ("account", from_key.account),
            ("region", region),
            ("load_balancer", from_key.load_balancer.as_deref()),
            ("distribution_id", from_key.distribution_id),
        ] {
            if let Some(value) = value {
                fields.push((name.to_owned(), value.to_owned()));
            }
        }
        if let Some(regex) = &self.key_regex
            && let Some(captures) = regex.captures(&object.key)
        {
            for name in regex.capture_names().flatten() {
                let Some(value) = captures.name(name).filter(|m| !m.is_empty()) else {
                    continue;
                };
                let value = value.as_str().to_owned();
                match fields.iter_mut().find(|(existing, _)| existing == name) {
                    Some(field) => field.1 = value,
                    None => fields.push((name.to_owned(), value)),
                }
            }
        }
        fields
    }
}

/// What an AWS log-delivery key tells about the log's source.
#[derive(Debug, Default, PartialEq, Eq)]
struct KeyFields<'a> {
    account: Option<&'a str>,
    region: Option<&'a str>,
    /// As the ELB logs' own `elb` field spells it (`app/name/id`).
    load_balancer: Option<String>,
    distribution_id: Option<&'a str>,
}

impl<'a> KeyFields<'a> {
    fn of(key: &'a str) -> KeyFields<'a> {
        let file_name = key.rsplit('/').next().unwrap_or(key);
        let Some(tree) = AWS_LOGS_TREE.captures(key) else {
            let distribution_id = CLOUDFRONT_FILE
                .captures(file_name)
                .and_then(|c| c.name("distribution_id"))
                .map(|m| m.as_str());
            return KeyFields {
                distribution_id,
                ..KeyFields::default()
            };
        };
        let load_balancer = (&tree["service"] == "elasticloadbalancing")
            .then(|| ELB_FILE.captures(file_name))
            .flatten()
            .map(|c| {
                elb_resource_name(c.name("load_balancer").expect("a required group").as_str())
            });
        KeyFields {
            account: tree.name("account").map(|m| m.as_str()),
            region: tree.name("region").map(|m| m.as_str()),
            load_balancer,
            distribution_id: None,
        }
    }
}

/// ALB and NLB file names carry the resource id with `/` replaced by `.`
/// (`app.my-lb.50dc6c495c0c9188`); CLB names contain neither.
fn elb_resource_name(in_file_name: &str) -> String {
    if in_file_name.starts_with("app.") || in_file_name.starts_with("net.") {
        in_file_name.replace('.', "/")
    } else {
        in_file_name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, region: Option<&str>) -> ObjectRef {
        ObjectRef {
            bucket: "logs-bucket".to_owned(),
            key: key.to_owned(),
            raw_key: key.to_owned(),
            size: None,
            version_id: None,
            region: region.map(str::to_owned),
            event_time: None,
            event_name: None,
            sequencer: None,
        }
    }

    fn key_fields(key: &str) -> (Option<&str>, Option<&str>, Option<String>, Option<&str>) {
        let fields = KeyFields::of(key);
        (
            fields.account,
            fields.region,
            fields.load_balancer,
            fields.distribution_id,
        )
    }

    #[test]
    fn alb_access_and_connection_log_keys() {
        let alb = "prefix/AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz";
        let expected = (
            Some("123456789012"),
            Some("us-east-2"),
            Some("app/my-loadbalancer/1234567890abcdef".to_owned()),
            None,
        );
        assert_eq!(key_fields(alb), expected);
        let conn = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/conn_log_123456789012_elasticloadbalancing_us-east-2_app.my-loadbalancer.1234567890abcdef_20140215T2340Z_172.160.001.192_20sg8hgm.log.gz";
        assert_eq!(key_fields(conn), expected);
    }

    #[test]
    fn nlb_and_clb_keys() {
        let nlb = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2020/05/01/123456789012_elasticloadbalancing_us-east-2_net.my-loadbalancer.1234567890abcdef_20200501T0000Z_20sg8hgm.log.gz";
        assert_eq!(
            key_fields(nlb).2.as_deref(),
            Some("net/my-loadbalancer/1234567890abcdef")
        );
        let clb = "my-bucket-prefix/AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.160.001.192_20sg8hgm.log";
        assert_eq!(
            key_fields(clb),
            (
                Some("123456789012"),
                Some("us-west-2"),
                Some("my-loadbalancer".to_owned()),
                None
            )
        );
    }

    #[test]
    fn vpc_flow_log_keys_plain_and_hive_style() {
        let plain = "AWSLogs/123456789010/vpcflowlogs/eu-west-1/2024/03/07/123456789010_vpcflowlogs_eu-west-1_fl-1234abcd_20240307T1205Z_hash.log.gz";
        let hourly = "flows/AWSLogs/123456789010/vpcflowlogs/eu-west-1/2024/03/07/12/123456789010_vpcflowlogs_eu-west-1_fl-1234abcd_20240307T1205Z_hash.log.gz";
        let hive = "AWSLogs/aws-account-id=123456789010/aws-service=vpcflowlogs/aws-region=eu-west-1/year=2024/month=03/day=07/123456789010_vpcflowlogs_eu-west-1_fl-1234abcd_20240307T1205Z_hash.log.gz";
        for key in [plain, hourly, hive] {
            assert_eq!(
                key_fields(key),
                (Some("123456789010"), Some("eu-west-1"), None, None),
                "{key}"
            );
        }
    }

    #[test]
    fn cloudtrail_keys_with_and_without_organization() {
        let trail = "AWSLogs/123456789012/CloudTrail/us-east-2/2016/08/11/123456789012_CloudTrail_us-east-2_20160811T2215Z_kpaMYavMQA9Ahp7L.json.gz";
        let org = "AWSLogs/o-exampleorgid/123456789012/CloudTrail/us-east-2/2016/08/11/123456789012_CloudTrail_us-east-2_20160811T2215Z_kpaMYavMQA9Ahp7L.json.gz";
        for key in [trail, org] {
            assert_eq!(
                key_fields(key),
                (Some("123456789012"), Some("us-east-2"), None, None),
                "{key}"
            );
        }
    }

    #[test]
    fn waf_keys() {
        let waf = "AWSLogs/123456789012/WAFLogs/us-east-1/my-acl/2024/01/02/03/05/123456789012_waflogs_us-east-1_my-acl_20240102T0305Z_hash.log.gz";
        assert_eq!(
            key_fields(waf),
            (Some("123456789012"), Some("us-east-1"), None, None)
        );
    }

    #[test]
    fn cloudfront_keys_name_the_distribution() {
        for key in [
            "example-prefix/EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",
            "EMLARXS9EXAMPLE.2019-11-14-20.RT4KCN4SGK9.gz",
        ] {
            assert_eq!(
                key_fields(key),
                (None, None, None, Some("EMLARXS9EXAMPLE")),
                "{key}"
            );
        }
    }

    #[test]
    fn keys_outside_aws_delivery_layouts_give_nothing() {
        for key in [
            "logs/2019-02-06-00-00-38-5C8A1E4F3EXAMPLE",
            "firehose/2015/10/29/00/my-delivery-stream-2015-10-29-00-01-21-a188030a",
            "AWSLogs/not-an-account/elasticloadbalancing/us-east-1/x.log",
        ] {
            assert_eq!(KeyFields::of(key), KeyFields::default(), "{key}");
        }
    }

    #[test]
    fn object_fields_combine_event_key_and_parser() {
        let enricher = Enricher::new(None);
        let key = "AWSLogs/123456789012/elasticloadbalancing/us-east-2/2016/05/01/123456789012_elasticloadbalancing_us-east-2_app.web.50dc6c495c0c9188_20140215T2340Z_10.0.0.1_x.log.gz";
        let fields = enricher.object_fields(&object(key, Some("eu-central-1")), "alb");
        let expected: Vec<(String, String)> = [
            ("bucket", "logs-bucket"),
            ("key", key),
            ("log_type", "alb"),
            ("account", "123456789012"),
            ("region", "us-east-2"),
            ("load_balancer", "app/web/50dc6c495c0c9188"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(fields, expected);
    }

    #[test]
    fn the_event_region_stands_in_when_the_key_has_none() {
        let fields =
            Enricher::new(None).object_fields(&object("app/x.log", Some("eu-central-1")), "ndjson");
        assert!(fields.contains(&("region".to_owned(), "eu-central-1".to_owned())));
        assert!(!fields.iter().any(|(name, _)| name == "account"));
    }

    #[test]
    fn named_groups_of_the_key_regex_are_added_and_win() {
        let regex = Regex::new(r"^(?P<env>[a-z]+)/(?P<team>[a-z]*)/(?:(?P<unused>zzz)/)?AWSLogs/\d+/(?P<log_type>[a-z]+)/").unwrap();
        let enricher = Enricher::new(Some(regex));
        let key = "prod//AWSLogs/123456789012/elasticloadbalancing/us-east-2/f.log";
        let fields = enricher.object_fields(&object(key, None), "alb");
        let value = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value("env"), Some("prod"));
        assert_eq!(value("log_type"), Some("elasticloadbalancing"));
        assert_eq!(fields.iter().filter(|(n, _)| n == "log_type").count(), 1);
        // Empty and unmatched groups add nothing.
        assert_eq!(value("team"), None);
        assert_eq!(value("unused"), None);
        assert_eq!(value("account"), Some("123456789012"));
    }
}
