// Package trust signs container images and verifies their signatures in the
// two formats registries carry today:
//
//   - cosign (Sigstore), key-based, in cosign's legacy tag layout: a
//     manifest tagged sha256-<hex>.sig in the image's repository whose
//     layers are simple-signing payloads, each signature in the layer
//     annotation dev.cosignproject.cosign/signature;
//   - cosign v3's default, a Sigstore bundle (DSSE envelope over an in-toto
//     statement) stored as an OCI 1.1 referrer of the image, verified with
//     public keys or, offline, keyless against a Sigstore trusted_root.json
//     and a certificate identity and issuer;
//   - Notary Project (Notation) signatures, JWS or COSE envelopes stored as
//     referrers with artifact type application/vnd.cncf.notary.signature,
//     verified against a Notation trust policy and trust store.
//
// The cryptography, envelopes, bundles and certificate checks are the
// libraries' own (sigstore-go and sigstore/sigstore, notation-go and
// notation-core-go); this package finds the signatures, bounds and
// verifies every byte it reads, and turns each library's verdict into a
// typed Reason.
//
// # Layout of signatures next to an image
//
//	repository
//	├── <image>                         manifest or index, digest D
//	├── sha256-<hex of D>.sig           cosign legacy: OCI manifest
//	│     layers[i]  application/vnd.dev.cosign.simplesigning.v1+json
//	│                annotations: dev.cosignproject.cosign/signature = base64(sig)
//	├── referrer (subject D)            cosign v3 bundle
//	│     artifactType application/vnd.dev.sigstore.bundle.v0.3+json
//	│     layers[0]  the bundle (JSON)
//	└── referrer (subject D)            Notation
//	      config     application/vnd.cncf.notary.signature ({})
//	      layers[0]  application/jose+json or application/cose
//
// # Use
//
// Verify takes a Subject (the digest, media type and size of the signed
// manifest, and the repository name it is known by), a Source that can list
// and read what is stored next to it, and a Policy (the cosign public keys,
// the keyless identities and trusted root, the Notation trust policy and
// store that are trusted). It returns every signature that verified, with
// the signer's identity, time and signed annotations, and a Rejection with
// a Reason for every one that did not. Result.Err is nil when at least one
// trusted signature covers the digest.
//
// The Source is a small interface, so a signature can come from anywhere:
// Remote reads a registry through go-containerregistry's transport, Layout
// reads an OCI image layout or lading's store. A registry that verifies at
// pull time implements Source over its own storage (referrers from its
// metadata, tags from its tag table, blobs straight from blob storage),
// builds a Policy once per project policy version (ParsePublicKey,
// NewKeyless, NewNotation with a NotationCertificates store held in
// memory; all safe for concurrent use), and calls Verify with the
// manifest being pulled. Verify's outcome depends only on the subject
// digest, the bytes the Source returns (each checked against its digest)
// and the Policy, so a registry may cache Result.Err by (manifest digest,
// policy version) and drop the cache entry when a signature is pushed or
// deleted for that digest. Nothing here reaches the network except through
// the Source given and, for Notation signatures whose certificates name
// OCSP or CRL endpoints, notation-go's revocation check (as the notation
// CLI does; NotationOptions.Revocation replaces it, for example with an
// offline validator in a registry).
//
// Sign writes signatures through a Sink (Remote and Layout are both), in
// the same formats, so that the cosign and notation CLIs verify them.
package trust
