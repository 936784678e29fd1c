//! Typed views of the custom resources the plugin reads and writes.
//!
//! Every struct keeps the fields it does not know in `extra`, so a read-modify-write never drops
//! what the console, the KubeSphere controllers or a user added.

pub mod gateway;
pub mod istio;
pub mod service_policy;
pub mod strategy;

/// Implements `kube::Resource` for a namespaced custom resource with a static API.
macro_rules! custom_resource {
    ($ty:ty, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        impl kube::Resource for $ty {
            type DynamicType = ();
            type Scope = kube::core::NamespaceResourceScope;

            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $version.into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
pub(crate) use custom_resource;

/// Unknown fields, kept verbatim.
pub type Extra = serde_json::Map<String, serde_json::Value>;
