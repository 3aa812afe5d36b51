"""Pre-review (网上预审): resumable chunked uploads from kiosks, submissions, the department's
decision (accept, or return with every missing or faulty item at once: 一次性告知)."""
