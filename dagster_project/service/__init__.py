"""Running the observatory unattended: `observatoire serve` (webserver + daemon as one
supervised service) and the alert outbox."""
