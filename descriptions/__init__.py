"""sfpy's own include library: `#include "org/smartfrog/components.sf"` finds its files here."""
