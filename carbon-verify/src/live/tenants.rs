//! Tenants: added and activated, each with its own user stores and users.

use super::*;

impl Run<'_> {
    pub(super) fn tenant(&mut self, k: usize) {
        let domain = format!("verify-{}-t{k}.example.com", self.run_id);
        self.progress.step(&format!("tenant {domain}"));
        let password = random_password();
        let info = TenantInfo {
            domain: domain.clone(),
            admin: "admin".into(),
            admin_password: Secret::from(password.clone()),
            email: format!("admin@{domain}"),
            first_name: "Verify".into(),
            last_name: "Tenant".into(),
        };
        let object = format!("tenant {domain}");
        match self.call(&Request::add_tenant(&info), None) {
            Ok(resp) => {
                let id = resp.map(|r| soap::returns(&r)).unwrap_or_default();
                self.report.info(
                    "tenant-add",
                    object,
                    format!(
                        "added; addTenant returned {}",
                        id.first().map_or("nothing", String::as_str)
                    ),
                );
            }
            Err(e) => {
                self.failed("tenant-add", object, &e, None);
                return;
            }
        }
        self.tenants.push(Tenant {
            domain: domain.clone(),
            creds: Credentials {
                user: format!("admin@{domain}"),
                password: Secret::from(password),
            },
        });
        let index = self.tenants.len() - 1;
        let store = format!("VERIFY-{}-T{k}", self.run_id.to_ascii_uppercase());
        let database = format!("verify_{}_t{k}", self.run_id);
        self.add_store(Some(index), store.clone(), database);
        self.wait_deployed(Some(index));
        if self.opts.users > 0 {
            self.users_in(Some(index), "PRIMARY");
            if self.stores.iter().any(|s| s.domain == store && s.deployed) {
                self.users_in(Some(index), &store);
            }
        }
    }
}
