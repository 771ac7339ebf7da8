//! Which parser reads an object and which sinks its records go to: the
//! first `[[routes]]` rule whose key regex matches decides what it names;
//! what it leaves out (or what no rule matches) falls to the parsers' own
//! detection and to every sink.

use anyhow::{Result, bail};
use regex::Regex;

use crate::config::Route;

/// The configured routes, each resolved to a parser `P` and sink positions.
pub struct Router<P> {
    routes: Vec<ResolvedRoute<P>>,
}

struct ResolvedRoute<P> {
    key_regex: Regex,
    parser: Option<P>,
    options: Vec<(String, String)>,
    sinks: Option<Vec<usize>>,
}

/// What the route of one object says.
pub struct RouteMatch<'a, P> {
    /// `None`: detection chooses.
    pub parser: Option<&'a P>,
    pub options: &'a [(String, String)],
    /// Positions of the sinks the records go to; `None`: every sink.
    pub sinks: Option<&'a [usize]>,
}

impl<P> Router<P> {
    /// `parser` finds the parser a route names and `sink` the position of
    /// a sink; an unknown name fails start-up, naming the route.
    pub fn new(
        routes: &[Route],
        mut parser: impl FnMut(&str) -> Option<P>,
        mut sink: impl FnMut(&str) -> Option<usize>,
    ) -> Result<Router<P>> {
        let mut resolved = Vec::with_capacity(routes.len());
        for (index, route) in routes.iter().enumerate() {
            let parser = match route.parser.as_deref() {
                None => None,
                Some(name) => match parser(name) {
                    Some(parser) => Some(parser),
                    None => bail!(
                        "routes[{index}].parser: no parser named {name:?} (see `s3logd parsers`)"
                    ),
                },
            };
            let sinks = match &route.sinks {
                None => None,
                Some(names) => {
                    let mut positions = Vec::with_capacity(names.len());
                    for name in names {
                        let Some(position) = sink(name) else {
                            bail!("routes[{index}].sinks: no sink named {name:?}");
                        };
                        if !positions.contains(&position) {
                            positions.push(position);
                        }
                    }
                    Some(positions)
                }
            };
            resolved.push(ResolvedRoute {
                key_regex: Regex::new(&route.key_regex)?,
                parser,
                options: route
                    .options
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect(),
                sinks,
            });
        }
        Ok(Router { routes: resolved })
    }

    /// What the first matching route says; with none, detection and every
    /// sink.
    pub fn route(&self, key: &str) -> RouteMatch<'_, P> {
        match self
            .routes
            .iter()
            .find(|route| route.key_regex.is_match(key))
        {
            Some(route) => RouteMatch {
                parser: route.parser.as_ref(),
                options: &route.options,
                sinks: route.sinks.as_deref(),
            },
            None => RouteMatch {
                parser: None,
                options: &[],
                sinks: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn route(key_regex: &str, parser: Option<&str>, options: &[(&str, &str)]) -> Route {
        Route {
            key_regex: key_regex.to_owned(),
            parser: parser.map(str::to_owned),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            sinks: None,
        }
    }

    fn known(name: &str) -> Option<String> {
        ["alb", "clb", "regex"]
            .contains(&name)
            .then(|| format!("parser:{name}"))
    }

    fn sink(name: &str) -> Option<usize> {
        ["es", "vl"].iter().position(|known| *known == name)
    }

    #[test]
    fn the_first_matching_route_wins() {
        let router = Router::new(
            &[
                route("^special/", Some("regex"), &[("pattern", "(?P<a>.*)")]),
                route("/elasticloadbalancing/", Some("alb"), &[]),
                route("", Some("clb"), &[]),
            ],
            known,
            sink,
        )
        .unwrap();
        let special = router.route("special/AWSLogs/1/elasticloadbalancing/x.log");
        assert_eq!(special.parser.unwrap(), "parser:regex");
        assert_eq!(
            special.options,
            [("pattern".to_owned(), "(?P<a>.*)".to_owned())]
        );
        let alb = router.route("AWSLogs/1/elasticloadbalancing/x.log");
        assert_eq!(alb.parser.unwrap(), "parser:alb");
        assert!(alb.options.is_empty() && alb.sinks.is_none());
        assert_eq!(router.route("anything").parser.unwrap(), "parser:clb");
    }

    #[test]
    fn no_matching_route_leaves_detection_to_the_parsers_and_records_to_every_sink() {
        let router = Router::new(&[route("^alb/", Some("alb"), &[])], known, sink).unwrap();
        for key in ["cloudfront/E1.2024-01-01-00.abc.gz", "x/alb/y"] {
            let found = router.route(key);
            assert!(found.parser.is_none() && found.sinks.is_none(), "{key}");
        }
    }

    #[test]
    fn a_route_may_name_sinks_and_leave_the_parser_to_detection() {
        let mut waf = route("WAFLogs/", None, &[]);
        waf.sinks = Some(vec!["es".into(), "es".into()]);
        let mut alb = route("elasticloadbalancing/", Some("alb"), &[]);
        alb.sinks = Some(vec!["vl".into(), "es".into()]);
        let router = Router::new(&[waf, alb], known, sink).unwrap();
        let found = router.route("AWSLogs/1/WAFLogs/x.gz");
        assert!(found.parser.is_none());
        assert_eq!(found.sinks, Some(&[0][..]));
        assert_eq!(
            router.route("AWSLogs/1/elasticloadbalancing/x.gz").sinks,
            Some(&[1, 0][..])
        );
    }

    #[test]
    fn an_unknown_parser_or_sink_name_is_reported_with_its_route() {
        let error = Router::new(
            &[route("a", Some("alb"), &[]), route("b", Some("nginx"), &[])],
            known,
            sink,
        )
        .err()
        .unwrap()
        .to_string();
        assert!(error.contains("routes[1].parser"), "{error}");
        assert!(error.contains("\"nginx\""), "{error}");
        let mut unknown_sink = route("a", None, &[]);
        unknown_sink.sinks = Some(vec!["loki".into()]);
        let error = Router::new(&[unknown_sink], known, sink)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("routes[0].sinks"), "{error}");
    }
}
