//! The guide's first checks: the server answers with its data (and the staging database it
//! uses), and what already exists in staging (tenants, super-tenant users) exists on the server.

use super::*;

impl Run<'_> {
    pub(super) fn server_data(&mut self, staging: Option<&DbUrl>) {
        self.progress.step("ServerAdmin.getServerData");
        let data = match self.call(&Request::get_server_data(), None) {
            Ok(Some(data)) => data,
            Ok(None) => {
                self.report.error(
                    "server-data",
                    "ServerAdmin",
                    "getServerData answered nothing",
                );
                return;
            }
            Err(e) => {
                self.failed("server-data", "ServerAdmin".into(), &e, None);
                return;
            }
        };
        let get = |name: &str| data.find(name).map(|e| e.text.trim().to_owned());
        let version = get("carbonVersion").unwrap_or_default();
        self.report.info(
            "server-data",
            self.client.base().to_owned(),
            format!(
                "Carbon {} ({})",
                if version.is_empty() { "?" } else { &version },
                get("serverName").unwrap_or_default()
            ),
        );
        let db_url = get("dbURL").unwrap_or_default();
        let shown = carbon_db::redact_raw(&db_url);
        match staging {
            None => self.report.warning(
                "server-db",
                format!("dbURL {shown}"),
                "no --home with a readable staging datasource: cannot tell whether this is staging",
            ),
            Some(staging) => {
                let root = self.opts.home.as_deref();
                let same = DbUrl::parse_in(&db_url, root).is_ok_and(|u| u.same_database(staging));
                if same {
                    self.report.info(
                        "server-db",
                        format!("dbURL {shown}"),
                        format!("is the staging database {staging}"),
                    );
                } else {
                    self.report.error(
                        "server-db",
                        format!("dbURL {shown}"),
                        format!("is not the staging database {staging}"),
                    );
                }
            }
        }
    }

    /// Tenants and super-tenant users that exist in staging must exist on the server.
    pub(super) fn preexisting(&mut self, staging: Option<&DbUrl>) {
        let Some(staging) = staging.filter(|s| s.vendor() != Vendor::H2) else {
            self.report.info(
                "preexisting",
                "staging database",
                "no queryable staging database (--home with a PostgreSQL/MySQL datasource): pre-existing tenants and users were not sampled",
            );
            return;
        };
        self.progress.step("pre-existing tenants and users");
        let sampled = Session::read_only(staging).and_then(|mut session| {
            let tenants = db::tenants(&mut session)?;
            let users = db::sample_users(
                &mut session,
                carbon_config::home::SUPER_TENANT_ID,
                self.opts.sample,
            )?;
            Ok((tenants, users))
        });
        let (tenants, users) = match sampled {
            Ok(found) => found,
            Err(e) => {
                self.report.error(
                    "preexisting",
                    staging.to_string(),
                    carbon_db::error_chain(&e),
                );
                return;
            }
        };
        let mut seen = 0;
        for row in tenants.iter().take(self.opts.sample) {
            let object = format!("tenant {} ({})", row.id, row.domain);
            match self.call(&Request::get_tenant(&row.domain), None) {
                Ok(Some(resp)) => {
                    let bean = resp.child("return");
                    let domain = bean.and_then(|b| b.child_text("tenantDomain"));
                    let id = bean.and_then(|b| b.child_text("tenantId"));
                    if domain.as_deref() == Some(row.domain.as_str())
                        && id.as_deref() == Some(row.id.to_string().as_str())
                    {
                        seen += 1;
                    } else {
                        self.report.error(
                            "preexisting-tenant",
                            object,
                            format!(
                                "getTenant answered domain {:?}, id {:?}",
                                domain.unwrap_or_default(),
                                id.unwrap_or_default()
                            ),
                        );
                    }
                }
                Ok(None) => {
                    self.report
                        .error("preexisting-tenant", object, "getTenant answered nothing")
                }
                Err(e) => self.failed("preexisting-tenant", object, &e, None),
            }
        }
        if !tenants.is_empty() {
            self.report.info(
                "preexisting-tenant",
                "UM_TENANT",
                format!(
                    "{seen} of {} sampled tenants found on the server",
                    tenants.len().min(self.opts.sample)
                ),
            );
        }
        let mut found = 0;
        for user in &users {
            let object = format!("user {user} (super tenant)");
            match self.is_existing(user, None) {
                Ok(true) => found += 1,
                Ok(false) => self.report.error(
                    "preexisting-user",
                    object,
                    "exists in staging UM_USER but not on the server",
                ),
                Err(e) => self.failed("preexisting-user", object, &e, None),
            }
        }
        if !users.is_empty() {
            self.report.info(
                "preexisting-user",
                "UM_USER",
                format!(
                    "{found} of {} sampled super-tenant users found on the server",
                    users.len()
                ),
            );
        }
    }
}
