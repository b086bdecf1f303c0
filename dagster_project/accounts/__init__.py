"""Growing the accounts registry: discover candidates (Wikidata), check them (Graph API),
add the verified ones (atomic rewrite of the registry). None changes the registry but `add`."""
