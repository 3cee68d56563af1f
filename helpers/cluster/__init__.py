"""The cluster path: label scheme, status reading, API access, manifests and their offline checks.

    labels     one label scheme for everything the workshop creates
    status     pure functions reading InferenceService and pod status
    client     reach the API server; turn its refusals into errors that say what to do
    gateway    the shared gateway the manifests deploy: its URL from here, readiness, admin key
    ledger     Lab 6's read path to the gateway's ledger: a port-forward through the API server
    results    a lab's figures in the attendee's namespace (a ConfigMap the instructor's report counts)
    access     what attendees do in the gateway's namespace and their own, as the RBAC rules that allow it
    manifests  the kustomize tree under manifests/, rendered from manifests/models.yaml
    validate   offline checks: kubectl kustomize, Kubernetes schemas, CRD schemas, policy
"""
