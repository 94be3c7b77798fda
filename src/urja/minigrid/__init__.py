"""Mini-grid operator's site console (seed 001): customers and packages per site, the recharge and
token counter, load-limiter and smart-meter states, value-added services (water purification unit,
appliance sales paid in instalments) and the site's agents and their cash."""
