//! Which parser reads an object: the first `[[routes]]` rule whose key regex
//! matches, otherwise the parsers' own detection.

use anyhow::{Result, bail};
use regex::Regex;

use crate::config::Route;

/// The configured routes, each resolved to a parser `P`.
pub struct Router<P> {
    routes: Vec<ResolvedRoute<P>>,
}

struct ResolvedRoute<P> {
    key_regex: Regex,
    parser: P,
    options: Vec<(String, String)>,
}

impl<P> Router<P> {
    /// `resolve` finds the parser a route names; an unknown name fails
    /// start-up, naming the route.
    pub fn new(routes: &[Route], mut resolve: impl FnMut(&str) -> Option<P>) -> Result<Router<P>> {
        let mut resolved = Vec::with_capacity(routes.len());
        for (index, route) in routes.iter().enumerate() {
            let Some(parser) = resolve(&route.parser) else {
                bail!(
                    "routes[{index}].parser: no parser named {:?} (see `s3logd parsers`)",
                    route.parser
                );
            };
            let key_regex = Regex::new(&route.key_regex)?;
            let options = route
                .options
                .iter()
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect();
            resolved.push(ResolvedRoute {
                key_regex,
                parser,
                options,
            });
        }
        Ok(Router { routes: resolved })
    }

    /// The parser and options of the first matching route; `None` leaves
    /// the choice to detection.
    pub fn route(&self, key: &str) -> Option<(&P, &[(String, String)])> {
        self.routes
            .iter()
            .find(|route| route.key_regex.is_match(key))
            .map(|route| (&route.parser, route.options.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn route(key_regex: &str, parser: &str, options: &[(&str, &str)]) -> Route {
        Route {
            key_regex: key_regex.to_owned(),
            parser: parser.to_owned(),
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn known(name: &str) -> Option<String> {
        ["alb", "clb", "regex"]
            .contains(&name)
            .then(|| format!("parser:{name}"))
    }

    #[test]
    fn the_first_matching_route_wins() {
        let router = Router::new(
            &[
                route("^special/", "regex", &[("pattern", "(?P<a>.*)")]),
                route("/elasticloadbalancing/", "alb", &[]),
                route("", "clb", &[]),
            ],
            known,
        )
        .unwrap();
        let (parser, options) = router
            .route("special/AWSLogs/1/elasticloadbalancing/x.log")
            .unwrap();
        assert_eq!(parser, "parser:regex");
        assert_eq!(options, [("pattern".to_owned(), "(?P<a>.*)".to_owned())]);
        let (parser, options) = router
            .route("AWSLogs/1/elasticloadbalancing/x.log")
            .unwrap();
        assert_eq!(parser, "parser:alb");
        assert!(options.is_empty());
        assert_eq!(router.route("anything").unwrap().0, "parser:clb");
    }

    #[test]
    fn no_matching_route_leaves_detection_to_the_parsers() {
        let router = Router::new(&[route("^alb/", "alb", &[])], known).unwrap();
        assert!(router.route("cloudfront/E1.2024-01-01-00.abc.gz").is_none());
        assert!(router.route("x/alb/y").is_none());
    }

    #[test]
    fn an_unknown_parser_name_is_reported_with_its_route() {
        let error = Router::new(&[route("a", "alb", &[]), route("b", "nginx", &[])], known)
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("routes[1].parser"), "{error}");
        assert!(error.contains("\"nginx\""), "{error}");
    }
}
