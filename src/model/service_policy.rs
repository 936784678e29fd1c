//! KubeSphere's ServicePolicy (servicemesh.kubesphere.io/v1alpha2): the traffic policy KubeSphere
//! puts on the DestinationRule of the Services labelled with the same `app`. Only the parts the
//! DestinationRule takes are typed.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::custom_resource;
use super::istio::DestinationRuleSpec;

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ServicePolicy {
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: ServicePolicySpec,
}
custom_resource!(ServicePolicy, "servicemesh.kubesphere.io", "v1alpha2", "ServicePolicy", "servicepolicies");

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ServicePolicySpec {
    #[serde(default)]
    pub template: ServicePolicyTemplate,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ServicePolicyTemplate {
    #[serde(default)]
    pub spec: DestinationRuleSpec,
}
