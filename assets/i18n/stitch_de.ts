<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="de" sourcelanguage="en">
    <context>
        <name>stitch</name>
        <message>
            <location filename="../../app/gui/__init__.py" line="49" />
            <source>Updater</source>
            <translation>Updater</translation>
        </message>
        <message>
            <location filename="../../app/gui/__init__.py" line="50" />
            <location filename="../../app/gui/text.py" line="222" />
            <source>The updater's settings file has a problem, so it cannot update. Tell the publisher of the game.</source>
            <translation>Die Einstellungsdatei des Updaters ist fehlerhaft, daher kann er nicht aktualisieren. Bitte wende dich an den Herausgeber des Spiels.</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="57" />
            <source>checking</source>
            <translation>wird geprüft</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="58" />
            <source>scanned</source>
            <translation>durchsucht</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="59" />
            <source>planned</source>
            <translation>geplant</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="60" />
            <source>downloading</source>
            <translation>wird heruntergeladen</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="61" />
            <source>rebuilt</source>
            <translation>neu erstellt</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="62" />
            <source>verified</source>
            <translation>überprüft</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="63" />
            <source>installed</source>
            <translation>installiert</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="64" />
            <source>done</source>
            <translation>fertig</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="72" />
            <source>File</source>
            <translation>Datei</translation>
        </message>
        <message>
            <location filename="../../app/gui/model.py" line="72" />
            <source>Activity</source>
            <translation>Vorgang</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="39" />
            <source>Checking for updates</source>
            <translation>Suche nach Updates</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="40" />
            <source>Scanning local files</source>
            <translation>Lokale Dateien werden durchsucht</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="41" />
            <source>Planning the update</source>
            <translation>Update wird geplant</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="42" />
            <source>Downloading</source>
            <translation>Herunterladen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="43" />
            <source>Rebuilding files</source>
            <translation>Dateien werden neu erstellt</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="44" />
            <source>Verifying files</source>
            <translation>Dateien werden überprüft</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="45" />
            <location filename="../../app/gui/text.py" line="168" />
            <source>Installing</source>
            <translation>Installation</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="46" />
            <location filename="../../app/gui/text.py" line="170" />
            <location filename="../../app/gui/window.py" line="438" />
            <location filename="../../app/gui/window.py" line="440" />
            <source>Done</source>
            <translation>Fertig</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="51" />
            <source>Stopped while checking for updates</source>
            <translation>Bei der Suche nach Updates angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="52" />
            <source>Stopped while scanning local files</source>
            <translation>Beim Durchsuchen der lokalen Dateien angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="53" />
            <source>Stopped while planning the update</source>
            <translation>Beim Planen des Updates angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="54" />
            <source>Stopped while downloading</source>
            <translation>Beim Herunterladen angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="55" />
            <source>Stopped while rebuilding files</source>
            <translation>Beim Neuerstellen der Dateien angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="56" />
            <source>Stopped while verifying files</source>
            <translation>Beim Überprüfen der Dateien angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="57" />
            <source>Stopped while installing</source>
            <translation>Bei der Installation angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="60" />
            <source>Cancelled while checking for updates</source>
            <translation>Bei der Suche nach Updates abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="61" />
            <source>Cancelled while scanning local files</source>
            <translation>Beim Durchsuchen der lokalen Dateien abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="62" />
            <source>Cancelled while planning the update</source>
            <translation>Beim Planen des Updates abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="63" />
            <source>Cancelled while downloading</source>
            <translation>Beim Herunterladen abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="64" />
            <source>Cancelled while rebuilding files</source>
            <translation>Beim Neuerstellen der Dateien abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="65" />
            <source>Cancelled while verifying files</source>
            <translation>Beim Überprüfen der Dateien abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="66" />
            <source>Cancelled while installing</source>
            <translation>Bei der Installation abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="78" />
            <source>.</source>
            <comment>decimal separator</comment>
            <translation>,</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="84" />
            <source>1 byte</source>
            <translation>1 Byte</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="84" />
            <source>{n} bytes</source>
            <translation>{n} Bytes</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="92" />
            <source>{number} {unit}</source>
            <comment>a size</comment>
            <translation>{number} {unit}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="98" />
            <source>{size}/s</source>
            <comment>a speed</comment>
            <translation>{size}/s</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="106" />
            <source>{s} s</source>
            <translation>{s} s</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="109" />
            <source>{minutes} min</source>
            <translation>{minutes} Min.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="112" />
            <source>{hours} h {minutes} min</source>
            <translation>{hours} Std. {minutes} Min.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="113" />
            <source>{hours} h</source>
            <translation>{hours} Std.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="120" />
            <source>about {duration} left</source>
            <translation>noch etwa {duration}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="147" />
            <source>Downloading {done} of {total}</source>
            <translation>{done} von {total} heruntergeladen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="150" />
            <source>{size} reused</source>
            <translation>{size} wiederverwendet</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="160" />
            <source>{done} of {total}</source>
            <translation>{done} von {total}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="165" />
            <source>Installing · {done} of {total} file</source>
            <translation>Installation · {done} von {total} Datei</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="166" />
            <source>Installing · {done} of {total} files</source>
            <translation>Installation · {done} von {total} Dateien</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="171" />
            <location filename="../../app/gui/window.py" line="395" />
            <source>{phase}…</source>
            <translation>{phase} …</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="180" />
            <source>Paused — {done} of {total}</source>
            <translation>Pausiert – {done} von {total}</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="182" />
            <location filename="../../app/gui/window.py" line="187" />
            <location filename="../../app/gui/window.py" line="415" />
            <source>Paused</source>
            <translation>Pausiert</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="206" />
            <location filename="../../app/gui/text.py" line="446" />
            <source>The update was cancelled. Your files were not changed.</source>
            <translation>Das Update wurde abgebrochen. Deine Dateien wurden nicht verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="211" />
            <source>Another update of this game is running. Wait for it to finish, then try again.</source>
            <translation>Ein anderes Update dieses Spiels läuft gerade. Warte, bis es fertig ist, und versuche es dann erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="229" />
            <source>There is not enough free disk space: {needed} needed, {free} free. Free some space and try again.</source>
            <translation>Es ist nicht genug Speicherplatz frei: {needed} benötigt, {free} frei. Gib etwas Speicherplatz frei und versuche es erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="237" />
            <source>The updater is not allowed to change the files in the game folder. Close the game if it is running, or choose another folder, and try again.</source>
            <translation>Der Updater darf die Dateien im Spielordner nicht ändern. Beende das Spiel, falls es läuft, oder wähle einen anderen Ordner, und versuche es erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="244" />
            <source>A file on this computer could not be read or written. Check that the disk is connected and not full, and try again.</source>
            <translation>Eine Datei auf diesem Computer konnte nicht gelesen oder geschrieben werden. Prüfe, ob das Laufwerk angeschlossen und nicht voll ist, und versuche es erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="250" />
            <source>Something unexpected went wrong in the updater. Try again; if it keeps happening, send the details to the publisher.</source>
            <translation>Im Updater ist etwas Unerwartetes schiefgegangen. Versuche es erneut; wenn es wieder passiert, schicke die Details an den Herausgeber.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="260" />
            <source>The update server does not have this release (error {code}). Try again later.</source>
            <translation>Der Update-Server hat diese Version nicht (Fehler {code}). Versuche es später erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="263" />
            <source>The update server refused the download (error {code}). Try again later.</source>
            <translation>Der Update-Server hat den Download verweigert (Fehler {code}). Versuche es später erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="266" />
            <source>The update server is having trouble (error {code}). Try again in a few minutes.</source>
            <translation>Der Update-Server hat Probleme (Fehler {code}). Versuche es in ein paar Minuten erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="269" />
            <source>The update server answered with an error (error {code}). Try again later.</source>
            <translation>Der Update-Server hat mit einem Fehler geantwortet (Fehler {code}). Versuche es später erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="273" />
            <source>The update server sent a reply the updater could not use. Try again later; if it keeps happening, tell the publisher.</source>
            <translation>Der Update-Server hat eine Antwort geschickt, die der Updater nicht verwenden kann. Versuche es später erneut; wenn es wieder passiert, wende dich an den Herausgeber.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="277" />
            <source>The update server could not be reached. Check your connection and try again.</source>
            <translation>Der Update-Server ist nicht erreichbar. Prüfe deine Internetverbindung und versuche es erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="282" />
            <source>The update is not signed by the publisher, so it was not installed. Nothing was changed.</source>
            <translation>Das Update ist nicht vom Herausgeber signiert und wurde daher nicht installiert. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="286" />
            <source>The server offers an older version ({offered}) than the one you have ({installed}), so it was not installed. Nothing was changed.</source>
            <translation>Der Server bietet eine ältere Version ({offered}) als deine ({installed}) an, daher wurde sie nicht installiert. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="289" />
            <source>The server offers an older version than the one you have, so it was not installed. Nothing was changed.</source>
            <translation>Der Server bietet eine ältere Version als deine an, daher wurde sie nicht installiert. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="293" />
            <source>The update on the server has expired, so it was not installed. Nothing was changed.</source>
            <translation>Das Update auf dem Server ist abgelaufen und wurde daher nicht installiert. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="296" />
            <source>The update tried to write outside the game folder, so it was refused. Nothing was changed.</source>
            <translation>Das Update wollte außerhalb des Spielordners schreiben und wurde daher abgelehnt. Es wurde nichts verändert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="299" />
            <source>A downloaded file arrived damaged. Nothing was changed. Try again; if it keeps happening, tell the publisher.</source>
            <translation>Eine heruntergeladene Datei ist beschädigt angekommen. Es wurde nichts verändert. Versuche es erneut; wenn es wieder passiert, wende dich an den Herausgeber.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="301" />
            <source>The update on the server is damaged or incomplete. Nothing was changed. Try again later.</source>
            <translation>Das Update auf dem Server ist beschädigt oder unvollständig. Es wurde nichts verändert. Versuche es später erneut.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="338" />
            <source>{version} (new install)</source>
            <translation>{version} (Neuinstallation)</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="349" />
            <source>{size} ({percent}% saved)</source>
            <translation>{size} ({percent} % gespart)</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="356" />
            <source>({size} already downloaded)</source>
            <translation>({size} bereits heruntergeladen)</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="364" />
            <source>{size} already downloaded: it continues where it stopped.</source>
            <translation>{size} bereits heruntergeladen: Es geht dort weiter, wo es aufgehört hat.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="366" />
            <source>Nothing has been downloaded yet.</source>
            <translation>Es wurde noch nichts heruntergeladen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="371" />
            <source>{needed} needed · {free} free</source>
            <translation>{needed} benötigt · {free} frei</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="386" />
            <source>Installed {product} {version}.</source>
            <translation>{product} {version} wurde installiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="387" />
            <source>Installed {version}.</source>
            <translation>Version {version} wurde installiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="389" />
            <source>Updated {product} from {old} to {version}.</source>
            <translation>{product} wurde von {old} auf {version} aktualisiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="390" />
            <source>Updated from {old} to {version}.</source>
            <translation>Von {old} auf {version} aktualisiert.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="397" />
            <source>Downloaded {now} (and {before} before it was stopped), reused {reused} from your existing files.</source>
            <translation>{now} heruntergeladen (und {before}, bevor es angehalten wurde), {reused} aus deinen vorhandenen Dateien wiederverwendet.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="399" />
            <source>Downloaded {now}, reused {reused} from your existing files.</source>
            <translation>{now} heruntergeladen, {reused} aus deinen vorhandenen Dateien wiederverwendet.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="401" />
            <source>Downloaded {now} (and {before} before it was stopped).</source>
            <translation>{now} heruntergeladen (und {before}, bevor es angehalten wurde).</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="402" />
            <source>Downloaded {now}.</source>
            <translation>{now} heruntergeladen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="408" />
            <source>{product} is up to date (version {version}).</source>
            <translation>{product} ist auf dem neuesten Stand (Version {version}).</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="410" />
            <source>The game is up to date (version {version}).</source>
            <translation>Das Spiel ist auf dem neuesten Stand (Version {version}).</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="416" />
            <location filename="../../app/gui/text.py" line="436" />
            <location filename="../../app/gui/view.py" line="264" />
            <source>Cancelled</source>
            <translation>Abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="416" />
            <source>Stopped</source>
            <translation>Angehalten</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="436" />
            <source>Could not check for updates</source>
            <translation>Suche nach Updates nicht möglich</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="438" />
            <source>Installation cancelled</source>
            <translation>Installation abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="438" />
            <source>Update cancelled</source>
            <translation>Update abgebrochen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="439" />
            <source>The installation did not finish</source>
            <translation>Die Installation wurde nicht abgeschlossen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="440" />
            <source>The update did not finish</source>
            <translation>Das Update wurde nicht abgeschlossen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="445" />
            <source>The installation was cancelled. What was downloaded is kept for next time.</source>
            <translation>Die Installation wurde abgebrochen. Was bereits heruntergeladen wurde, bleibt für das nächste Mal erhalten.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="453" />
            <source>Stop the installation?</source>
            <translation>Installation abbrechen?</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="454" />
            <source>Stop the installation? What was already downloaded is kept for next time.</source>
            <translation>Installation abbrechen? Was bereits heruntergeladen wurde, bleibt für das nächste Mal erhalten.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="455" />
            <location filename="../../app/gui/text.py" line="462" />
            <source>&amp;Stop download</source>
            <translation>Download &amp;stoppen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="456" />
            <location filename="../../app/gui/text.py" line="463" />
            <source>&amp;Keep downloading</source>
            <translation>&amp;Weiter herunterladen</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="459" />
            <source>Stop the update?</source>
            <translation>Update abbrechen?</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="460" />
            <source>Stop the update? Your files stay as they were; what was already downloaded is kept for next time.</source>
            <translation>Update abbrechen? Deine Dateien bleiben, wie sie waren; was bereits heruntergeladen wurde, bleibt für das nächste Mal erhalten.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="472" />
            <source>No folder was chosen, so nothing was installed. Choose Retry to pick one.</source>
            <translation>Es wurde kein Ordner gewählt, daher wurde nichts installiert. Wähle „Erneut versuchen“, um einen auszuwählen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="478" />
            <source>You cannot install in {chosen} without administrator rights, so the game will go in your own folder, {per_user}. Choose Change… to pick another.</source>
            <translation>Ohne Administratorrechte kannst du nicht in {chosen} installieren, daher kommt das Spiel in deinen eigenen Ordner, {per_user}. Wähle „Ändern …“, um einen anderen auszuwählen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="486" />
            <source>Couldn't check for updates — you can still play {product} {version}.</source>
            <translation>Die Suche nach Updates war nicht möglich – du kannst {product} {version} trotzdem spielen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/text.py" line="488" />
            <source>Couldn't check for updates — you can still play {version}.</source>
            <translation>Die Suche nach Updates war nicht möglich – du kannst Version {version} trotzdem spielen.</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="76" />
            <source>Overall progress</source>
            <translation>Gesamtfortschritt</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="97" />
            <source>C&amp;hange…</source>
            <translation>Ä&amp;ndern …</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="101" />
            <source>Version:</source>
            <translation>Version:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="102" />
            <source>Download:</source>
            <translation>Download:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="103" />
            <source>Reused from your files:</source>
            <translation>Aus deinen Dateien wiederverwendet:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="104" />
            <source>Disk space:</source>
            <translation>Speicherplatz:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="105" />
            <source>Install to:</source>
            <translation>Installieren nach:</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="109" />
            <source>What's new</source>
            <translation>Neuigkeiten</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="118" />
            <source>Release notes</source>
            <translation>Versionshinweise</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="128" />
            <location filename="../../app/gui/view.py" line="284" />
            <source>&amp;Show details</source>
            <translation>Details an&amp;zeigen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="135" />
            <source>Technical details</source>
            <translation>Technische Details</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="140" />
            <source>&amp;Details</source>
            <translation>&amp;Details</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="150" />
            <source>Details log</source>
            <translation>Protokoll</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="157" />
            <source>Log</source>
            <translation>Protokoll</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="158" />
            <source>Files</source>
            <translation>Dateien</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="162" />
            <location filename="../../app/gui/window.py" line="504" />
            <source>&amp;Pause</source>
            <translation>&amp;Pause</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="163" />
            <source>&amp;Cancel</source>
            <translation>&amp;Abbrechen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="164" />
            <source>&amp;Retry</source>
            <translation>&amp;Erneut versuchen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="165" />
            <location filename="../../app/gui/window.py" line="434" />
            <source>&amp;Update</source>
            <translation>Ak&amp;tualisieren</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="166" />
            <source>&amp;Play</source>
            <translation>&amp;Spielen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="167" />
            <source>C&amp;lose</source>
            <translation>S&amp;chließen</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="264" />
            <source>Error</source>
            <translation>Fehler</translation>
        </message>
        <message>
            <location filename="../../app/gui/view.py" line="284" />
            <source>&amp;Hide details</source>
            <translation>Details aus&amp;blenden</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="145" />
            <source>Choose where to install {name}</source>
            <translation>Wähle, wo {name} installiert werden soll</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="146" />
            <source>Choose where to install the game</source>
            <translation>Wähle, wo das Spiel installiert werden soll</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="149" />
            <source>({size} needed)</source>
            <translation>({size} benötigt)</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="161" />
            <source>Cannot write to {chosen}; using {per_user}</source>
            <translation>Kein Schreibzugriff auf {chosen}; stattdessen {per_user}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="174" />
            <source>Updating in {folder}</source>
            <translation>Aktualisierung in {folder}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="183" />
            <source>Resumed</source>
            <translation>Fortgesetzt</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="199" />
            <location filename="../../app/gui/window.py" line="452" />
            <source>Cancelling…</source>
            <translation>Wird abgebrochen …</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="224" />
            <source>Install folder: {folder}</source>
            <translation>Installationsordner: {folder}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="237" />
            <source>Starting {command}</source>
            <translation>Starte {command}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="242" />
            <source>Could not start the game: {error}</source>
            <translation>Das Spiel konnte nicht gestartet werden: {error}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="308" />
            <source>Offered version {offered}; installed {installed}</source>
            <translation>Angebotene Version {offered}; installiert: {installed}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="309" />
            <source>nothing</source>
            <translation>nichts</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="312" />
            <location filename="../../app/gui/window.py" line="354" />
            <source>Warning: {warning}</source>
            <translation>Warnung: {warning}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="328" />
            <source>Plan: download {download} in about {requests} requests, reuse {reused}</source>
            <translation>Plan: {download} in etwa {requests} Anfragen herunterladen, {reused} wiederverwenden</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="340" />
            <source>Continuing where it stopped</source>
            <translation>Es geht dort weiter, wo es aufgehört hat</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="356" />
            <source>Warning: could not remember the install folder: {error}</source>
            <translation>Warnung: Der Installationsordner konnte nicht gespeichert werden: {error}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="376" />
            <source>Failed: {reason}</source>
            <translation>Fehlgeschlagen: {reason}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="431" />
            <source>Ready to install {what}</source>
            <translation>Bereit zur Installation von {what}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="432" />
            <source>Update available: {what}</source>
            <translation>Update verfügbar: {what}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="434" />
            <source>&amp;Install</source>
            <translation>&amp;Installieren</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="442" />
            <source>Up to date</source>
            <translation>Auf dem neuesten Stand</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="444" />
            <source>No update needed</source>
            <translation>Kein Update nötig</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="460" />
            <source>Version {version}</source>
            <translation>Version {version}</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="472" />
            <source>There is not enough free disk space for this update. Free some space, then choose Retry.</source>
            <translation>Für dieses Update ist nicht genug Speicherplatz frei. Gib etwas Speicherplatz frei und wähle dann „Erneut versuchen“.</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="475" />
            <source>There is not enough free disk space there. Choose another folder.</source>
            <translation>Dort ist nicht genug Speicherplatz frei. Wähle einen anderen Ordner.</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="504" />
            <source>&amp;Resume</source>
            <translation>&amp;Fortsetzen</translation>
        </message>
        <message>
            <location filename="../../app/gui/window.py" line="537" />
            <source>{percent}% · {title}</source>
            <translation>{percent} % · {title}</translation>
        </message>
    </context>
</TS>
