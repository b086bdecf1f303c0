"""The accounts registry (who speaks for which territory) and the reference territories;
growing it: discover candidates (Wikidata), check them (Graph API), add the verified ones
(atomic rewrite of the registry). None changes the registry but `add`."""
