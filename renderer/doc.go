// Package renderer turns a Helm manifest stream into the same stream with every
// canaried Deployment split into a production and a canary Deployment, routed by an
// Istio DestinationRule and a weighted VirtualService for the stage being rendered.
//
// Data flow: the input is split into raw documents (split.go); only the documents the
// transformation needs (Deployments, Services, autoscalers, Istio routing) are parsed,
// the rest are classified by a cheap scan of their top-level kind and never decoded.
// Parsed documents are changed in place and new ones are attached after the document
// they derive from (filters.go holds the order). On output, a document that was not
// changed is written back byte for byte (separator, comments and all), so nothing the
// chart rendered is lost, and the cost of a render is proportional to what it touches.
//
// The package is pure: bytes and options in, bytes out. It never reads the cluster or
// the environment; the caller passes the production manifest in.
package renderer
