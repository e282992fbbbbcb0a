"""What an application embeds: label maps to pictures (colorize, overlay). numpy only."""
