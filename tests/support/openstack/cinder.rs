//! The fake Cinder (block-storage v3): the volume types the capi-helm
//! driver reads.

use super::*;

/// Cinder v3, as much as the capi-helm driver reads: the volume types it
/// turns into the cluster's StorageClasses (magnum_capi_helm 1.4.0
/// driver.py `_get_storage_class_info`: cinderclient
/// `volume_types.list()`, i.e. `GET <block-storage endpoint>/types?is_public=None`,
/// the first type when `csi_cinder_default_volume_type` is unset). A
/// Cinder since Train always has `__DEFAULT__` (block-storage API
/// reference, "Volume types": `{"volume_types": [...]}`).
pub(super) fn cinder(req: &HttpRequest, rest: &[&str]) -> Response {
    match (req.method.as_str(), rest) {
        ("GET", ["v3", "types"]) | ("GET", ["v3", _, "types"]) => Response::json(
            200,
            &json!({"volume_types": [{
                "id": "8d6a3c2e-62b2-4e3f-9e4c-0d2f1a9b5c11",
                "name": "__DEFAULT__",
                "description": "Default Volume Type",
                "is_public": true,
                "os-volume-type-access:is_public": true,
                "extra_specs": {},
                "qos_specs_id": null
            }]}),
        ),
        _ => Response::json(
            404,
            &json!({"itemNotFound": {"code": 404, "message": "The resource could not be found."}}),
        ),
    }
}
