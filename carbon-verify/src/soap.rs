//! SOAP 1.1 requests to the Carbon admin services, built exactly as their WSDLs say, and the
//! reading of responses and faults.
//!
//! Every operation element and child carries the namespace its WSDL schema declares
//! (`elementFormDefault="qualified"`); children follow the schema's `xs:sequence` order.
//! `SOAPAction` is `"urn:<operation>"` for every operation of these services.

use std::fmt;

use carbon_config::Secret;
use serde::Serialize;

use crate::xml::{self, Element, escape};

pub const SOAP_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// ServerAdmin and UserStoreConfigAdminService operation elements.
pub(crate) const AXIS2_XSD: &str = "http://org.apache.axis2/xsd";
/// `UserStoreDTO` and `PropertyDTO`.
pub const USERSTORE_DTO: &str = "http://dto.configuration.store.user.identity.carbon.wso2.org/xsd";
/// RemoteUserStoreManagerService operation elements.
pub(crate) const UM_SERVICE: &str = "http://service.ws.um.carbon.wso2.org";
/// TenantMgtAdminService operation elements.
pub(crate) const TENANT_SERVICE: &str = "http://services.mgt.tenant.carbon.wso2.org";
/// `TenantInfoBean`.
pub const TENANT_BEAN: &str = "http://beans.common.stratos.carbon.wso2.org/xsd";

/// The class of Carbon's JDBC user store manager.
pub const JDBC_USER_STORE_CLASS: &str = "org.wso2.carbon.user.core.jdbc.JDBCUserStoreManager";

/// An admin service, reachable at `<base>/services/<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Service {
    ServerAdmin,
    UserStoreConfigAdminService,
    RemoteUserStoreManagerService,
    TenantMgtAdminService,
}

impl Service {
    pub const ALL: [Service; 4] = [
        Service::ServerAdmin,
        Service::UserStoreConfigAdminService,
        Service::RemoteUserStoreManagerService,
        Service::TenantMgtAdminService,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::ServerAdmin => "ServerAdmin",
            Service::UserStoreConfigAdminService => "UserStoreConfigAdminService",
            Service::RemoteUserStoreManagerService => "RemoteUserStoreManagerService",
            Service::TenantMgtAdminService => "TenantMgtAdminService",
        }
    }

    /// The namespace of this service's operation elements.
    pub fn namespace(self) -> &'static str {
        match self {
            Service::ServerAdmin | Service::UserStoreConfigAdminService => AXIS2_XSD,
            Service::RemoteUserStoreManagerService => UM_SERVICE,
            Service::TenantMgtAdminService => TENANT_SERVICE,
        }
    }

    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One request, ready to send. `Debug` shows no body: bodies can carry passwords.
#[derive(Clone)]
pub struct Request {
    pub service: Service,
    pub operation: &'static str,
    /// In-only operations (no output message in the WSDL) answer HTTP 202 with an empty body.
    pub in_only: bool,
    /// The operation element, with its namespace declarations.
    pub body: String,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Request({}.{})", self.service, self.operation)
    }
}

impl Request {
    /// The `SOAPAction` header value, quoted as SOAP 1.1 requires.
    pub fn soap_action(&self) -> String {
        format!("\"urn:{}\"", self.operation)
    }

    pub fn envelope(&self) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV}\"><soapenv:Header/>\
             <soapenv:Body>{}</soapenv:Body></soapenv:Envelope>",
            self.body
        )
    }

    /// `ServerAdmin.getServerData`.
    pub fn get_server_data() -> Request {
        Request::simple(Service::ServerAdmin, "getServerData", false, &[])
    }

    /// `UserStoreConfigAdminService.getSecondaryRealmConfigurations`.
    pub fn get_secondary_realm_configurations() -> Request {
        Request::simple(
            Service::UserStoreConfigAdminService,
            "getSecondaryRealmConfigurations",
            false,
            &[],
        )
    }

    /// `UserStoreConfigAdminService.addUserStore(userStoreDTO)` (in-only).
    pub fn add_user_store(store: &UserStoreDto) -> Request {
        let mut dto = String::new();
        for (name, value) in [
            ("className", store.class_name.as_str()),
            ("description", store.description.as_str()),
            ("disabled", if store.disabled { "true" } else { "false" }),
            ("domainId", store.domain.as_str()),
        ] {
            dto.push_str(&format!("<dto:{name}>{}</dto:{name}>", escape(value)));
        }
        for (name, value) in &store.properties {
            dto.push_str(&format!(
                "<dto:properties><dto:name>{}</dto:name><dto:value>{}</dto:value></dto:properties>",
                escape(name),
                escape(value)
            ));
        }
        Request {
            service: Service::UserStoreConfigAdminService,
            operation: "addUserStore",
            in_only: true,
            body: format!(
                "<xsd:addUserStore xmlns:xsd=\"{AXIS2_XSD}\" xmlns:dto=\"{USERSTORE_DTO}\">\
                 <xsd:userStoreDTO>{dto}</xsd:userStoreDTO></xsd:addUserStore>"
            ),
        }
    }

    /// `UserStoreConfigAdminService.deleteUserStore(domainName)` (in-only).
    pub fn delete_user_store(domain: &str) -> Request {
        Request::simple(
            Service::UserStoreConfigAdminService,
            "deleteUserStore",
            true,
            &[("domainName", domain)],
        )
    }

    /// `RemoteUserStoreManagerService.addUser` (in-only). `user` is `DOMAIN/name` for a
    /// secondary store, a bare name for PRIMARY.
    pub fn add_user(user: &str, credential: &str, roles: &[&str]) -> Request {
        let mut children = vec![("userName", user), ("credential", credential)];
        children.extend(roles.iter().map(|r| ("roleList", *r)));
        children.push(("profileName", "default"));
        children.push(("requirePasswordChange", "false"));
        Request::simple(
            Service::RemoteUserStoreManagerService,
            "addUser",
            true,
            &children,
        )
    }

    /// `RemoteUserStoreManagerService.deleteUser` (in-only).
    pub fn delete_user(user: &str) -> Request {
        Request::simple(
            Service::RemoteUserStoreManagerService,
            "deleteUser",
            true,
            &[("userName", user)],
        )
    }

    /// `RemoteUserStoreManagerService.isExistingUser → boolean`.
    pub fn is_existing_user(user: &str) -> Request {
        Request::simple(
            Service::RemoteUserStoreManagerService,
            "isExistingUser",
            false,
            &[("userName", user)],
        )
    }

    /// `RemoteUserStoreManagerService.listUsers(filter, maxItemLimit) → string[]`.
    pub fn list_users(filter: &str, max: u32) -> Request {
        let max = max.to_string();
        Request::simple(
            Service::RemoteUserStoreManagerService,
            "listUsers",
            false,
            &[("filter", filter), ("maxItemLimit", &max)],
        )
    }

    /// `TenantMgtAdminService.addTenant(tenantInfoBean) → string` (the tenant id).
    pub fn add_tenant(tenant: &TenantInfo) -> Request {
        let mut bean = String::new();
        for (name, value) in [
            ("active", "true"),
            ("admin", tenant.admin.as_str()),
            (
                "adminPassword",
                tenant.admin_password.plain().unwrap_or_default(),
            ),
            ("email", tenant.email.as_str()),
            ("firstname", tenant.first_name.as_str()),
            ("lastname", tenant.last_name.as_str()),
            ("tenantDomain", tenant.domain.as_str()),
        ] {
            bean.push_str(&format!("<xsd:{name}>{}</xsd:{name}>", escape(value)));
        }
        Request {
            service: Service::TenantMgtAdminService,
            operation: "addTenant",
            in_only: false,
            body: format!(
                "<ser:addTenant xmlns:ser=\"{TENANT_SERVICE}\" xmlns:xsd=\"{TENANT_BEAN}\">\
                 <ser:tenantInfoBean>{bean}</ser:tenantInfoBean></ser:addTenant>"
            ),
        }
    }

    /// `TenantMgtAdminService.getTenant(tenantDomain) → TenantInfoBean`.
    pub fn get_tenant(domain: &str) -> Request {
        Request::simple(
            Service::TenantMgtAdminService,
            "getTenant",
            false,
            &[("tenantDomain", domain)],
        )
    }

    /// `TenantMgtAdminService.deactivateTenant(tenantDomain)`.
    pub fn deactivate_tenant(domain: &str) -> Request {
        Request::simple(
            Service::TenantMgtAdminService,
            "deactivateTenant",
            false,
            &[("tenantDomain", domain)],
        )
    }

    /// An operation whose children are all simple values in the operation's namespace.
    fn simple(
        service: Service,
        operation: &'static str,
        in_only: bool,
        children: &[(&str, &str)],
    ) -> Request {
        let mut body = format!("<op:{operation} xmlns:op=\"{}\">", service.namespace());
        for (name, value) in children {
            body.push_str(&format!("<op:{name}>{}</op:{name}>", escape(value)));
        }
        body.push_str(&format!("</op:{operation}>"));
        Request {
            service,
            operation,
            in_only,
            body,
        }
    }
}

/// The `UserStoreDTO` of `addUserStore`. `Debug` hides property values (one is a password).
#[derive(Clone)]
pub struct UserStoreDto {
    pub class_name: String,
    pub description: String,
    pub disabled: bool,
    pub domain: String,
    pub properties: Vec<(String, String)>,
}

impl fmt::Debug for UserStoreDto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserStoreDto")
            .field("class_name", &self.class_name)
            .field("domain", &self.domain)
            .field(
                "properties",
                &self.properties.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// The `TenantInfoBean` of `addTenant`. `Debug` hides the admin password.
#[derive(Clone)]
pub struct TenantInfo {
    pub domain: String,
    pub admin: String,
    pub admin_password: Secret,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
}

impl fmt::Debug for TenantInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantInfo")
            .field("domain", &self.domain)
            .field("admin", &self.admin)
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A SOAP fault's code and string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fault {
    pub code: String,
    pub string: String,
}

/// What a response body held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The first element of the SOAP Body (e.g. `getServerDataResponse`).
    Element(Element),
    Fault(Fault),
    /// An empty Body (operations whose output message has no part, e.g. `deactivateTenant`).
    Empty,
}

/// Reads a SOAP 1.1 response envelope.
pub fn parse_response(text: &str) -> Result<Response, String> {
    let root = xml::parse(text).map_err(|e| e.to_string())?;
    if root.ns != SOAP_ENV || root.name != "Envelope" {
        return Err(format!("not a SOAP 1.1 envelope (root {})", root.qname()));
    }
    let body = root
        .children
        .iter()
        .find(|c| c.ns == SOAP_ENV && c.name == "Body")
        .ok_or("the envelope has no Body")?;
    let Some(first) = body.children.first() else {
        return Ok(Response::Empty);
    };
    if first.ns == SOAP_ENV && first.name == "Fault" {
        return Ok(Response::Fault(Fault {
            code: first.child_text("faultcode").unwrap_or_default(),
            string: first.child_text("faultstring").unwrap_or_default(),
        }));
    }
    Ok(Response::Element(first.clone()))
}

/// A SOAP 1.1 fault envelope (for servers, and for tests).
pub fn fault_envelope(code: &str, string: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <soapenv:Envelope xmlns:soapenv=\"{SOAP_ENV}\"><soapenv:Body><soapenv:Fault>\
         <faultcode>{}</faultcode><faultstring>{}</faultstring><detail/>\
         </soapenv:Fault></soapenv:Body></soapenv:Envelope>",
        escape(code),
        escape(string)
    )
}

/// Every `return` child's text (string arrays, booleans, ids).
pub(crate) fn returns(response: &Element) -> Vec<String> {
    response
        .children_named("return")
        .filter(|r| r.attr("nil") != Some("true"))
        .map(|r| r.text.trim().to_owned())
        .collect()
}
