//! Clean-up: everything the run created is removed (users, user stores and their databases);
//! tenants can only be deactivated and are listed in the report.

use super::*;

impl Run<'_> {
    pub(super) fn cleanup(&mut self) {
        if self.opts.keep {
            let kept = format!(
                "{} users, {} user stores (and their databases), {} tenants kept",
                self.users.len(),
                self.stores.len(),
                self.tenants.len()
            );
            self.report
                .warning("cleanup", format!("run {}", self.run_id), kept);
            self.report.leftover_tenants = self.tenants.iter().map(|t| t.domain.clone()).collect();
            return;
        }
        self.progress.step("clean-up");
        let users = std::mem::take(&mut self.users);
        let mut deleted = 0;
        for (tenant, name) in users.iter().rev() {
            match self.call(&Request::delete_user(name), *tenant) {
                Ok(_) => deleted += 1,
                Err(e) => {
                    let object = format!("user {name} ({})", self.tenant_label(*tenant));
                    self.failed("cleanup-user", object, &e, *tenant);
                }
            }
        }
        if !users.is_empty() {
            self.report.info(
                "cleanup-user",
                format!("run {}", self.run_id),
                format!("{deleted} of {} users deleted", users.len()),
            );
        }
        let stores = std::mem::take(&mut self.stores);
        for store in &stores {
            let object = format!(
                "user store {} ({})",
                store.domain,
                self.tenant_label(store.tenant)
            );
            if store.added {
                match self.call(&Request::delete_user_store(&store.domain), store.tenant) {
                    Ok(_) => self.report.info(
                        "cleanup-userstore",
                        object.clone(),
                        "deleteUserStore accepted",
                    ),
                    Err(e) => self.failed("cleanup-userstore", object.clone(), &e, store.tenant),
                }
            }
            if let Some((server, _)) = &self.setup
                && let Err(e) = carbon_db::drop_database(server, &store.database)
            {
                self.report.warning(
                    "cleanup-userstore",
                    object,
                    format!("database not dropped: {}", carbon_db::error_chain(&e)),
                );
            }
        }
        let tenants = self.tenants.clone();
        for tenant in &tenants {
            let object = format!("tenant {}", tenant.domain);
            match self.call(&Request::deactivate_tenant(&tenant.domain), None) {
                Ok(_) => {
                    let active = self
                        .call(&Request::get_tenant(&tenant.domain), None)
                        .ok()
                        .flatten()
                        .and_then(|r| r.child("return").and_then(|b| b.child_text("active")));
                    if active.as_deref() == Some("false") {
                        self.report.info(
                            "cleanup-tenant",
                            object,
                            "deactivated (deleteTenant cannot delete on carbon-multitenancy 4.6.x); it stays in the database",
                        );
                    } else {
                        self.report.warning(
                            "cleanup-tenant",
                            object,
                            format!(
                                "deactivateTenant accepted but getTenant says active={}",
                                active.unwrap_or_default()
                            ),
                        );
                    }
                }
                Err(e) => self.failed("cleanup-tenant", object, &e, None),
            }
            self.report.leftover_tenants.push(tenant.domain.clone());
        }
    }
}
