"""SloughGPT's text generation (its "Text Generation"): `POST /generate` (streamed or not)
and `POST /generate/batch`, also under `/v1/`, with its API-Version negotiation."""
