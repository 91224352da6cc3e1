//! Users in one store of one tenant: added, confirmed, and able to log in.

use super::*;

impl Run<'_> {
    /// Adds the run's users to one store of one tenant and confirms them.
    pub(super) fn users_in(&mut self, tenant: Option<usize>, domain: &str) {
        let who = self.tenant_label(tenant);
        self.progress.step(&format!("users in {domain} ({who})"));
        let password = random_password();
        let mut added = Vec::new();
        for j in 1..=self.opts.users {
            let bare = format!("vfy{}u{j}", self.run_id);
            let name = if domain == "PRIMARY" {
                bare
            } else {
                format!("{domain}/{bare}")
            };
            let object = format!("user {name} ({who})");
            match self.call(&Request::add_user(&name, &password, &[]), tenant) {
                Ok(_) => {
                    self.users.push((tenant, name.clone()));
                    match self.is_existing(&name, tenant) {
                        Ok(true) => added.push(name),
                        Ok(false) => self.report.error(
                            "user-confirm",
                            object,
                            "addUser was accepted but isExistingUser says false",
                        ),
                        Err(e) => self.failed("user-confirm", object, &e, tenant),
                    }
                }
                Err(e) => self.failed("user-add", object, &e, tenant),
            }
        }
        if added.is_empty() {
            return;
        }
        // PRIMARY is listed with a filter without a domain (primary plus every secondary,
        // secondaries prefixed): `PRIMARY/...` filters are not understood by every kernel.
        let primary = domain == "PRIMARY";
        let filter = if primary {
            format!("vfy{}*", self.run_id)
        } else {
            format!("{domain}/vfy{}*", self.run_id)
        };
        match self.call(&Request::list_users(&filter, 100), tenant) {
            Ok(resp) => {
                let listed: Vec<String> = resp.map(|r| soap::returns(&r)).unwrap_or_default();
                let in_domain = |n: &str| -> Option<String> {
                    match n.split_once('/') {
                        None if primary => Some(n.to_owned()),
                        Some((d, rest)) if d.eq_ignore_ascii_case(domain) => Some(rest.to_owned()),
                        _ => None,
                    }
                };
                let bare = |n: &str| n.rsplit('/').next().unwrap_or(n).to_owned();
                let listed: Vec<String> = listed.iter().filter_map(|n| in_domain(n)).collect();
                let missing: Vec<&String> = added
                    .iter()
                    .filter(|n| !listed.contains(&bare(n)))
                    .collect();
                if missing.is_empty() {
                    self.report.info(
                        "user-confirm",
                        format!("domain {domain} ({who})"),
                        format!(
                            "{} users added; isExistingUser and listUsers({filter}) confirm them",
                            added.len()
                        ),
                    );
                } else {
                    self.report.error(
                        "user-confirm",
                        format!("domain {domain} ({who})"),
                        format!(
                            "listUsers({filter}) lacks {}",
                            missing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    );
                }
            }
            Err(e) => self.failed(
                "user-confirm",
                format!("domain {domain} ({who})"),
                &e,
                tenant,
            ),
        }
    }
}
