//! JDBC secondary user stores: a fresh database per store, initialised with the new home's
//! dbscript, added over `UserStoreConfigAdminService` and waited for until deployed.

use super::*;

impl Run<'_> {
    pub(super) fn super_tenant_stores(&mut self) {
        for i in 1..=self.opts.userstores {
            let domain = format!("VERIFY-{}-S{i}", self.run_id.to_ascii_uppercase());
            let database = format!("verify_{}_s{i}", self.run_id);
            self.add_store(None, domain, database);
        }
        self.wait_deployed(None);
        let deployed: Vec<String> = self
            .stores
            .iter()
            .filter(|s| s.tenant.is_none() && s.deployed)
            .map(|s| s.domain.clone())
            .collect();
        for domain in deployed {
            self.users_in(None, &domain);
        }
    }

    /// Creates and initialises the store's database, then `addUserStore`.
    pub(super) fn add_store(&mut self, tenant: Option<usize>, domain: String, database: String) {
        let Some((server, script)) = self.setup.clone() else {
            return;
        };
        let who = self.tenant_label(tenant);
        let object = format!("user store {domain} ({who})");
        self.progress.step(&format!("user store {domain}"));
        let created = carbon_db::create_database(&server, &database).and_then(|url| {
            let mut session = Session::read_write(&url)?;
            session.run_script(&script)?;
            if db::has_um_user(&mut session) {
                Ok(url)
            } else {
                Err(DbError::Sql {
                    url: url.to_string(),
                    context: "running the dbscript".into(),
                    detail: "it created no UM_USER table".into(),
                })
            }
        });
        let mut store = Store {
            domain: domain.clone(),
            database: database.clone(),
            tenant,
            added: false,
            deployed: false,
        };
        let url = match created {
            Ok(url) => url,
            Err(e) => {
                self.report
                    .error("userstore-db", object, carbon_db::error_chain(&e));
                self.stores.push(store);
                return;
            }
        };
        self.report.info(
            "userstore-db",
            object.clone(),
            format!(
                "created database {url} and ran dbscripts/{}",
                db::script_name(server.vendor())
            ),
        );
        let jdbc = match url.to_jdbc() {
            Ok(jdbc) => jdbc,
            Err(e) => {
                self.report
                    .error("userstore-db", object, carbon_db::error_chain(&e));
                self.stores.push(store);
                return;
            }
        };
        let dto = UserStoreDto {
            class_name: JDBC_USER_STORE_CLASS.into(),
            description: format!("carbon-upgrade verification run {}", self.run_id),
            disabled: false,
            domain: domain.clone(),
            properties: vec![
                (
                    "driverName".into(),
                    jdbc.default_driver().unwrap_or_default().into(),
                ),
                ("url".into(), jdbc.to_string()),
                (
                    "userName".into(),
                    url.user().unwrap_or(default_user(server.vendor())).into(),
                ),
                ("password".into(), url.password().unwrap_or_default().into()),
            ],
        };
        match self.call(&Request::add_user_store(&dto), tenant) {
            Ok(_) => {
                store.added = true;
                self.report
                    .info("userstore-add", object, "addUserStore accepted");
            }
            Err(e) => {
                let message = if tenant.is_some() && e.is_access_denied() {
                    format!("the tenant admin may not add user stores: {e}")
                } else {
                    e.to_string()
                };
                if !(self.fatal && tenant.is_none()) {
                    self.report.error("userstore-add", object, message);
                }
            }
        }
        self.stores.push(store);
    }

    /// Polls `getSecondaryRealmConfigurations` until the added stores of this tenant are
    /// deployed or the timeout passes.
    pub(super) fn wait_deployed(&mut self, tenant: Option<usize>) {
        let pending = |run: &Self| -> Vec<usize> {
            run.stores
                .iter()
                .enumerate()
                .filter(|(_, s)| s.tenant == tenant && s.added && !s.deployed)
                .map(|(i, _)| i)
                .collect()
        };
        if pending(self).is_empty() {
            return;
        }
        self.progress.step("waiting for user-store deployment");
        let started = Instant::now();
        loop {
            match self.call(&Request::get_secondary_realm_configurations(), tenant) {
                Ok(resp) => {
                    let deployed: Vec<String> = resp
                        .iter()
                        .flat_map(|r| r.children_named("return"))
                        .filter(|dto| dto.child_text("disabled").as_deref() != Some("true"))
                        .filter_map(|dto| dto.child_text("domainId"))
                        .map(|d| d.to_ascii_uppercase())
                        .collect();
                    for i in pending(self) {
                        if deployed.contains(&self.stores[i].domain.to_ascii_uppercase()) {
                            self.stores[i].deployed = true;
                            let object = format!(
                                "user store {} ({})",
                                self.stores[i].domain,
                                self.tenant_label(tenant)
                            );
                            self.report.info(
                                "userstore-deploy",
                                object,
                                format!("deployed after {:.1} s", started.elapsed().as_secs_f64()),
                            );
                        }
                    }
                }
                Err(e) => {
                    self.failed(
                        "userstore-deploy",
                        format!(
                            "getSecondaryRealmConfigurations ({})",
                            self.tenant_label(tenant)
                        ),
                        &e,
                        tenant,
                    );
                    return;
                }
            }
            if pending(self).is_empty() {
                return;
            }
            if started.elapsed() >= self.opts.deploy_timeout {
                for i in pending(self) {
                    let object = format!(
                        "user store {} ({})",
                        self.stores[i].domain,
                        self.tenant_label(tenant)
                    );
                    self.report.error(
                        "userstore-deploy",
                        object,
                        format!(
                            "not deployed within {} s (--deploy-timeout)",
                            self.opts.deploy_timeout.as_secs_f64()
                        ),
                    );
                }
                return;
            }
            std::thread::sleep(self.opts.poll_interval);
        }
    }
}
