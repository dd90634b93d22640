//! HTTP clients: the management cluster's Kubernetes API (verify), and
//! later the OpenStack APIs (smoketest). ureq over rustls.

pub mod kube;
pub mod openstack;
