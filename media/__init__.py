"""Pure image code: photo specs, decoding, checks, auto-fix, storage. No Flask, no database."""
