"""Outreach (seeds 000 and 003): RWA and IWA meetings, customer meets, Nishta camps and Anubhav Kendra
sessions as events with attendance, issues raised and requests registered on the spot (channel `camp`),
with their follow-up tracked."""
