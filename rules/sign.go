package rules

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Signature errors. Every error from [OpenSigned] wraps one of them.
var (
	ErrUnsigned     = errors.New("not a signed document")
	ErrUnknownKey   = errors.New("signed by an unknown key")
	ErrBadSignature = errors.New("signature does not verify (tampered or wrong key)")
)

// SignedFormat is the value of the "signed" field of a signed envelope.
const SignedFormat = "procwall-signed/1"

// signContext is prepended to the payload before signing, so a signature
// made for something else never verifies here.
const signContext = "procwall-signed-v1\n"

// envelope is a signed document: {"signed":"procwall-signed/1","key":NAME,
// "payload":BASE64,"sig":BASE64}. The signature is ed25519 over
// "procwall-signed-v1\n" followed by the payload bytes.
type envelope struct {
	Signed  string `json:"signed"`
	Key     string `json:"key"`
	Payload string `json:"payload"`
	Sig     string `json:"sig"`
}

// Keyring maps key names to trusted ed25519 public keys.
type Keyring map[string]ed25519.PublicKey

// Sign wraps payload in a signed envelope made with priv under keyName.
func Sign(priv ed25519.PrivateKey, keyName string, payload []byte) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("sign: bad private key")
	}
	if keyName == "" || strings.ContainsAny(keyName, " \t\n") {
		return nil, fmt.Errorf("sign: bad key name %q", keyName)
	}
	sig := ed25519.Sign(priv, append([]byte(signContext), payload...))
	data, err := json.MarshalIndent(envelope{
		Signed: SignedFormat, Key: keyName,
		Payload: base64.StdEncoding.EncodeToString(payload),
		Sig:     base64.StdEncoding.EncodeToString(sig),
	}, "", " ")
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return append(data, '\n'), nil
}

// OpenSigned verifies a signed envelope against keys and returns its
// payload and the signing key's name.
func OpenSigned(data []byte, keys Keyring) (payload []byte, keyName string, err error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil || env.Signed == "" {
		return nil, "", fmt.Errorf("open signed: %w", ErrUnsigned)
	}
	if env.Signed != SignedFormat {
		return nil, "", fmt.Errorf("open signed: %w: format %q, want %q", ErrUnsigned, env.Signed, SignedFormat)
	}
	pub, ok := keys[env.Key]
	if !ok {
		return nil, env.Key, fmt.Errorf("open signed: %w %q", ErrUnknownKey, env.Key)
	}
	payload, err1 := base64.StdEncoding.DecodeString(env.Payload)
	sig, err2 := base64.StdEncoding.DecodeString(env.Sig)
	if err1 != nil || err2 != nil {
		return nil, env.Key, fmt.Errorf("open signed: %w: payload or sig is not base64", ErrBadSignature)
	}
	if !ed25519.Verify(pub, append([]byte(signContext), payload...), sig) {
		return nil, env.Key, fmt.Errorf("open signed: key %q: %w", env.Key, ErrBadSignature)
	}
	return payload, env.Key, nil
}

// Key file formats: one line, "procwall-ed25519-public NAME BASE64" (32-byte
// public key) or "procwall-ed25519-private NAME BASE64" (32-byte seed).
const (
	pubTag  = "procwall-ed25519-public"
	privTag = "procwall-ed25519-private"
)

// GenerateKey makes a new key pair and returns both key files' contents.
func GenerateKey(name string) (pubFile, privFile []byte, err error) {
	if name == "" || strings.ContainsAny(name, " \t\n") {
		return nil, nil, fmt.Errorf("generate key: bad key name %q", name)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	pubFile = fmt.Appendf(nil, "%s %s %s\n", pubTag, name, base64.StdEncoding.EncodeToString(pub))
	privFile = fmt.Appendf(nil, "%s %s %s\n", privTag, name, base64.StdEncoding.EncodeToString(priv.Seed()))
	return pubFile, privFile, nil
}

func parseKeyLine(data []byte, tag string, size int) (string, []byte, error) {
	f := strings.Fields(string(data))
	if len(f) != 3 || f[0] != tag {
		return "", nil, fmt.Errorf("not a %q key file", tag)
	}
	b, err := base64.StdEncoding.DecodeString(f[2])
	if err != nil || len(b) != size {
		return "", nil, fmt.Errorf("key %q: bad key material", f[1])
	}
	return f[1], b, nil
}

// ParsePublicKey parses a public key file.
func ParsePublicKey(data []byte) (string, ed25519.PublicKey, error) {
	name, b, err := parseKeyLine(data, pubTag, ed25519.PublicKeySize)
	if err != nil {
		return "", nil, fmt.Errorf("parse public key: %w", err)
	}
	return name, ed25519.PublicKey(b), nil
}

// ParsePrivateKey parses a private key file.
func ParsePrivateKey(data []byte) (string, ed25519.PrivateKey, error) {
	name, b, err := parseKeyLine(data, privTag, ed25519.SeedSize)
	if err != nil {
		return "", nil, fmt.Errorf("parse private key: %w", err)
	}
	return name, ed25519.NewKeyFromSeed(b), nil
}
